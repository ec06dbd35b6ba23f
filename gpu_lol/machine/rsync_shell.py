"""The ssh wrapper rsync uses as its remote shell, so a chatty remote login cannot break it.

A remote ``.bashrc`` that prints text would corrupt rsync's protocol ("is your shell clean?").
rsync's remote command prints a random marker first (:func:`rsync_path`), and rsync's ``-e`` is
``python -m gpu_lol.machine.rsync_shell --clean-ssh MARKER ssh ...`` (:func:`clean_ssh_command`),
which drops everything the login shell printed before the marker. Used by ``pull``/``push``
(:mod:`gpu_lol.machine.transfer`) and the repo sync (:func:`gpu_lol.machine.remote.sync_repo`).
"""

from __future__ import annotations

import os
import subprocess
import sys

_CLEAN_FLAG = "--clean-ssh"
# How much remote login noise the wrapper skips looking for the marker before giving up.
_NOISE_LIMIT = 1 << 20


def clean_ssh_command(ssh_argv: list[str], marker: str) -> list[str]:
    """The argv rsync runs as ``-e``: our wrapper around ``ssh_argv`` that skips login noise."""
    return [sys.executable, "-m", "gpu_lol.machine.rsync_shell", _CLEAN_FLAG, marker, *ssh_argv]


def rsync_path(marker: str) -> str:
    """``--rsync-path``: the remote command prints the marker, then becomes rsync (plain words:
    every login shell, fish and csh included, reads it the same way)."""
    return f"echo {marker}; exec rsync"


def new_marker() -> str:
    return "gpu-lol-rsync-" + os.urandom(8).hex()


def _clean_ssh_main(argv: list[str]) -> int:
    """Run ssh; copy its stdout to ours from the line after the marker on."""
    import signal

    marker, ssh = argv[0].encode(), argv[1:]
    needle = marker + b"\n"
    # Ctrl-C reaches rsync and ssh (same process group); we wait for ssh to end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proc = subprocess.Popen(ssh, stdout=subprocess.PIPE)
    source, sink = proc.stdout.fileno(), sys.stdout.fileno()
    os.set_blocking(sink, True)  # rsync hands us a non-blocking socket
    buffered = b""
    found = False
    try:
        while True:
            if found and _splice_rest(source, sink):
                break
            chunk = os.read(source, 1 << 16)
            if not chunk:
                break
            if found:
                _write_all(sink, chunk)
                continue
            buffered += chunk
            at = buffered.find(needle)
            if at >= 0:
                found = True
                _write_all(sink, buffered[at + len(needle):])
                buffered = b""
            elif len(buffered) > _NOISE_LIMIT:
                found = True  # no marker: pass everything on, rsync reports what it sees
                _write_all(sink, buffered)
                buffered = b""
        if buffered:
            # The remote command never got to rsync (e.g. rsync is missing): say what came.
            os.write(2, buffered[-2000:])
    except BrokenPipeError:
        pass
    finally:
        proc.stdout.close()
    return proc.wait()


def _splice_rest(source: int, sink: int) -> bool:
    """Copy the rest of the stream in the kernel (Linux ``splice``); False where it cannot."""
    splice = getattr(os, "splice", None)
    if splice is None:
        return False
    try:
        while splice(source, sink, 1 << 20):
            pass
    except OSError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


if __name__ == "__main__":  # the ssh wrapper rsync runs (see clean_ssh_command)
    if len(sys.argv) > 2 and sys.argv[1] == _CLEAN_FLAG:
        raise SystemExit(_clean_ssh_main(sys.argv[2:]))
    raise SystemExit("usage: python -m gpu_lol.machine.rsync_shell --clean-ssh MARKER SSH-ARGV...")
