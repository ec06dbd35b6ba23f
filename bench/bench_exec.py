"""Benchmark: `gpu-lol exec NAME -- true` against raw `ssh ... true` on a loopback sshd.

Starts the system's sshd on 127.0.0.1 (as the test suite does, tests/sshd.py; needs root),
records a host target pointing at it, then times N runs of each command and prints the medians
as a Markdown table. The first gpu-lol run opens the shared master connection and is reported
on its own; every later run reuses it.

    .venv/bin/python bench/bench_exec.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-300:]}")
    return elapsed


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    import sshd  # tests/sshd.py

    reason = sshd.unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="gpu-lol-bench-"))
    server = sshd.start_sshd(scratch / "sshd")
    env = dict(os.environ, HOME=str(scratch / "home"), GPU_LOL_HOME=str(scratch / "home" / ".gpu-lol"))
    (scratch / "home").mkdir()
    workdir = scratch / "work"
    workdir.mkdir()
    gpu_lol = [str(Path(sys.executable).with_name("gpu-lol"))]
    try:
        record = (
            "from gpu_lol.launch import state; state.save(state.Target(name='bench', kind='host', repo=%r, "
            "extra={'host': %r, 'user': %r, 'port': %d, 'identity': %r, 'workdir': %r}))"
            % (str(workdir), server.host, server.user, server.port, str(server.identity), str(workdir)))
        subprocess.run([sys.executable, "-c", record], env=env, check=True)
        raw = server.raw_ssh_argv() + ["true"]
        raw_mux = server.raw_ssh_argv()[:-1] + [
            "-o", "ControlMaster=auto", "-o", f"ControlPath={scratch}/raw-%C", "-o", "ControlPersist=60",
            f"{server.user}@{server.host}", "true"]
        ours = gpu_lol + ["exec", "bench", "--", "true"]
        first = timed(ours, env)  # opens the master connection
        timed(raw_mux, env)
        commands = {
            "raw `ssh … true` (new connection each time)": raw,
            "raw `ssh … 'bash --login -c true'` (same login environment)": server.raw_ssh_argv()
            + ["bash --login -c true"],
            "raw `ssh … true` with its own ControlMaster": raw_mux,
            "`gpu-lol exec bench -- true` (shared master)": ours,
            "gpu-lol CLI start alone (`gpu-lol --version`)": gpu_lol + ["--version"],
        }
        # Interleaved rounds: load from anything else on the machine hits every command alike.
        results: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, argv in commands.items():
                results[label].append(timed(argv, env))
    finally:
        subprocess.run(gpu_lol + ["down", "bench", "--yes"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        sshd.stop_sshd(server.process)
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"loopback sshd, {args.runs} runs each, {platform.node()} ({os.cpu_count()} CPUs), "
          f"Python {platform.python_version()}, {subprocess.run(['ssh', '-V'], capture_output=True, text=True).stderr.strip()}")
    print()
    print("| command | median | min | max |")
    print("|---|---|---|---|")
    for label, values in results.items():
        print(f"| {label} | {ms(statistics.median(values))} | {ms(min(values))} | {ms(max(values))} |")
    print(f"| first `gpu-lol exec` (opens the master connection) | {ms(first)} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
