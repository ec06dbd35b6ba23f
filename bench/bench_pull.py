"""Benchmark: `gpu-lol pull` against raw `rsync -a -e ssh` on a loopback sshd.

Starts the system's sshd on 127.0.0.1 (as the test suite does, tests/sshd.py; needs root),
records a host target whose workdir holds one file of --mb MiB, then times interleaved runs of
a fresh pull (the destination is removed before each run) with both. The difference is what
gpu-lol adds: its two dry runs (the plan and the newer-file check) and the ssh wrapper that
drops login-shell noise before rsync's protocol starts.

    .venv/bin/python bench/bench_pull.py [--runs 5] [--mb 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    import sshd

    reason = sshd.unavailable_reason()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    scratch = Path(tempfile.mkdtemp(prefix="gpu-lol-bench-pull-"))
    home = scratch / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "GPU_LOL_HOME": str(home / ".gpu-lol")}
    os.environ.update(env)
    server = sshd.start_sshd(scratch / "sshd")
    try:
        from gpu_lol.launch import state
        from gpu_lol.launch.state import Target
        from gpu_lol.machine import remote

        workdir = scratch / "work"
        (workdir / "outputs").mkdir(parents=True)
        (workdir / "outputs" / "ckpt.bin").write_bytes(os.urandom(args.mb * 1024 * 1024))
        target = Target(name="bench", kind="host", repo=str(scratch / "repo"),
                        extra={"host": server.host, "user": server.user, "port": server.port,
                               "identity": str(server.identity), "workdir": str(workdir), "venv": None})
        state.save(target)
        (scratch / "repo").mkdir()
        exe = Path(sys.executable).with_name("gpu-lol")
        ssh = " ".join(remote.ssh_command_for_rsync(target))
        dest = scratch / "dest"
        commands = {
            "raw `rsync -a -e ssh` (shared master)": ["rsync", "-a", "-e", ssh,
                                                      f"{server.host}:{workdir}/outputs", str(dest)],
            "`gpu-lol pull bench outputs DEST`": [str(exe), "pull", "bench", "outputs", str(dest), "--no-progress"],
        }
        subprocess.run(commands["raw `rsync -a -e ssh` (shared master)"], check=True, env=env)  # warm the master
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.runs):
            for label, argv in commands.items():
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
                started = time.perf_counter()
                proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)
                times[label].append(time.perf_counter() - started)
                if proc.returncode != 0:
                    raise SystemExit(f"{label} failed: {proc.stderr.decode(errors='replace')[-400:]}")
        print(f"| command ({args.mb} MiB, {args.runs} interleaved runs) | median | min |")
        print("|---|---|---|")
        for label, values in times.items():
            print(f"| {label} | {statistics.median(values):.2f} s | {min(values):.2f} s |")
        remote.close(target)
    finally:
        sshd.stop_sshd(server.process)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
