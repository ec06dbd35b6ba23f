"""A real OpenSSH server on 127.0.0.1 for tests (no mocks of the transport).

``sshd_server`` (session scope) starts the system's ``sshd`` on a free loopback port with its own
host key, a client key, ``AuthorizedKeysFile`` and pid file in a temporary directory, and stops
it at the end. Where sshd cannot run (not root, not installed) the tests that use it are skipped
with the reason; ``make test`` installs openssh-server, so in CI they run.

Import the fixtures into a test module with ``from sshd import sshd_server, remote_tmp`` (pytest puts tests/ on sys.path).
The remote side is this machine as the current user, with a scratch HOME of its own (``SetEnv``):
the machine's real dotfiles never run in a test session. On the CI image root's ``.bashrc`` runs
``pyenv init``, whose rehash takes a lock file; one session killed at the wrong moment leaves it
behind and every later login shell then waits 60 s for it (a CI run stalled for an hour on that).
Tests still use ``remote_tmp`` (a scratch directory removed afterwards) as every remote workdir.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    identity: Path  # client private key accepted by the server
    directory: Path
    process: subprocess.Popen

    @property
    def spec(self) -> str:
        """The ``USER@HOST:PORT`` string ``up --host`` takes."""
        return f"{self.user}@{self.host}:{self.port}"

    def raw_ssh_argv(self) -> list[str]:
        """Plain ssh to the server (no gpu-lol options), for comparisons."""
        return ["ssh", "-i", str(self.identity), "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", f"{self.user}@{self.host}"]


def read_until(fd: int, needle: bytes, timeout: float = 30) -> bytes:
    """Read a pty's master ``fd`` until ``needle`` shows up, it closes, or ``timeout`` passes."""
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def _find_sshd() -> str | None:
    for path in SSHD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("sshd")


def unavailable_reason() -> str | None:
    """Why a loopback sshd cannot run here, or None."""
    if _find_sshd() is None:
        return "sshd is not installed (apt-get install openssh-server; `make test` does it)"
    for tool in ("ssh", "ssh-keygen", "rsync"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (`make test` installs it)"
    if os.geteuid() != 0:
        # sshd drops privileges per session and needs its privilege-separation setup: only
        # root can run a second sshd that logs users in.
        return "running sshd needs root (the CI container runs tests as root)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not answer on port {port} within {timeout:.0f}s")


def _scratch_home(directory: Path, extra_config) -> list[str]:
    if any(line.startswith("SetEnv") and "HOME=" in line for line in extra_config):
        return []
    home = directory / "home"
    home.mkdir(exist_ok=True)
    # A login profile like a fresh Debian account's: nothing beyond sshd's default PATH.
    (home / ".profile").write_text("# scratch account for gpu-lol's tests\n")
    return [f"SetEnv HOME={home}"]


def start_sshd(directory: Path, extra_config: list[str] | tuple[str, ...] = ()) -> SshServer:
    """``extra_config``: more sshd_config lines (e.g. ``SetEnv HOME=...`` for a fake account,
    ``ForceCommand`` to stand in for another login shell). Without a ``SetEnv HOME=`` of their own,
    sessions get ``directory/home``: a scratch account whose profile sets nothing."""
    sshd = _find_sshd()
    assert sshd is not None
    directory.mkdir(parents=True, exist_ok=True)
    host_key = directory / "host_ed25519"
    client_key = directory / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gpu-lol-test", "-f", str(key)],
                       check=True, stdin=subprocess.DEVNULL)
    (directory / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    os.chmod(client_key, 0o600)
    # sshd refuses to start without its privilege-separation directory (the Debian service
    # creates it at boot; a container that never ran the service has none).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "MaxSessions 64",
        "MaxStartups 64",
        "LogLevel ERROR",
        "Subsystem sftp internal-sftp",
        *extra_config,
        *_scratch_home(directory, extra_config),
        "",
    ]))
    log = open(directory / "sshd.log", "wb")
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        _wait_for_port(port, process)
    except RuntimeError as exc:
        stop_sshd(process)
        text = (directory / "sshd.log").read_text(errors="replace").strip().splitlines()
        raise RuntimeError(f"{exc}: {text[-1] if text else 'no output'}") from None
    return SshServer(host="127.0.0.1", port=port, user=getpass.getuser(), identity=client_key,
                     directory=directory, process=process)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(entry.name))
    return out


def stop_sshd(process: subprocess.Popen) -> None:
    # Per-connection sshd processes are children in sessions of their own: end them first, so
    # the clients' shared master connections (ControlPersist) see the server go and exit.
    if process.poll() is None and Path("/proc").is_dir():
        for child in _children(process.pid):
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if process.poll() is None:
        # The listener is the session leader; per-connection children share its group.
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no loopback sshd: {reason}")
    # A short directory: nothing here is a socket, but paths show up in error messages.
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        stop_sshd(server.process)


@pytest.fixture
def remote_tmp():
    """A scratch directory for the remote side (same machine), removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="gpu-lol-remote-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def control_cleanup():
    """After each test: end any master connection left in this test's control directory and
    remove the directory when it is the short /tmp fallback (every test has its own
    GPU_LOL_HOME, hence its own directory). Autouse in the modules that import it."""
    yield
    from gpu_lol import paths
    from gpu_lol.machine import remote

    directory = remote.control_dir()
    if directory is None or not directory.is_dir():
        return
    for sock in directory.iterdir():
        if sock.is_socket():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "gpu-lol-test"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    if not str(directory).startswith(str(paths.home())):
        shutil.rmtree(directory, ignore_errors=True)
