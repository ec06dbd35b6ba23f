"""Faults: an unreachable API server, a misbehaving LLM endpoint, ssh servers that stall, Ctrl-C at
each stage, and commands racing on the same state. Servers are real, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hostile_cases import API_CASES, LLM_CASES, RACE_CASES, SIGINT_CASES, SSH_FAULT_CASES
from hostile_checks import check_outcome


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RawServer:
    """A TCP server on 127.0.0.1 with a scripted misbehaviour per connection."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.stop = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            self.accepted.set()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.behaviour(conn, self.stop)
        except OSError:
            pass

    def close(self):
        self.stop.set()
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass
        self.sock.close()


def _read_request(conn) -> None:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _http(status: str, body: bytes, ctype: bytes = b"application/json"):
    def behave(conn, stop):
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + ctype
                     + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        conn.close()
    return behave


def _never(conn, stop):
    stop.wait(60)


def _reset(conn, stop):
    _read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def _drip(conn, stop):
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    while not stop.wait(1.0):
        conn.sendall(b" ")


LLM_BEHAVIOURS = {
    "never-answers": _never,
    "500": _http("500 Internal Server Error", b'{"error": {"message": "boom"}}'),
    "10MB": _http("200 OK", b'{"choices": [{"message": {"content": "' + b"x" * (10 << 20) + b'"}}]}'),
    "invalid-json": _http("200 OK", b'{"choices": [{"message": '),
    "html": _http("200 OK", b"<html><body>login</body></html>" * 100, b"text/html"),
    "empty": _http("200 OK", b""),
    "reset": _reset,
    "wrong-shape": _http("200 OK", json.dumps({"choices": "nope", "data": [1, 2]}).encode()),
    "slow-drip": _drip,
}


def _repo(tmp_path: Path, files: int = 0) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("import torch\nfrom transformers import AutoModel\n"
                                   "AutoModel.from_pretrained('bert-base-uncased')\n")
    for i in range(files):
        directory = repo / f"d{i // 1000}"
        if i % 1000 == 0:
            directory.mkdir()
        (directory / f"f{i}.py").write_text("import numpy\n")
    return repo


# ---- API server ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", API_CASES, ids=[c.id for c in API_CASES])
def test_api_server_unreachable(case, tmp_path, isolated_home):
    # A fresh process: SkyPilot caches the server URL per process, so in-process runs would see
    # whatever an earlier test configured.
    env = dict(os.environ, SKYPILOT_API_SERVER_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    proc = _gpu_lol(list(case.build), env, cwd=tmp_path)
    out, err = proc.communicate(timeout=120)  # a hang guard, not a timing assert
    check_outcome(Out(proc.returncode, out, err), case.expect)
    assert "API server" in err


# ---- LLM endpoint --------------------------------------------------------------------------
@pytest.mark.parametrize("case", LLM_CASES, ids=[c.id for c in LLM_CASES])
def test_llm_endpoint_fault(case, run_cli, monkeypatch, tmp_path):
    server = None
    if case.build == "refused":
        url = f"http://127.0.0.1:{_closed_port()}/v1"
    else:
        server = RawServer(LLM_BEHAVIOURS[case.build])
        url = f"http://127.0.0.1:{server.port}/v1"
    monkeypatch.setenv("GPU_LOL_LLM_URL", url)
    monkeypatch.setenv("GPU_LOL_LLM_KEY", "sk-HOSTILE-SECRET-c0ffee-9d2e4a7b1f")
    monkeypatch.setenv("GPU_LOL_LLM_TIMEOUT", "1")
    try:
        result = run_cli("analyze", "--json", _repo(tmp_path), cwd=tmp_path)
    finally:
        if server is not None:
            server.close()
    check_outcome(result, "works")
    data = result.json()
    assert data["workload_type"]  # the heuristics' answer
    assert "LLM" in result.err + json.dumps(data.get("warnings"))


# ---- ssh that is not a working sshd --------------------------------------------------------
def _banner_stall(conn, stop):
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    stop.wait(60)


def _garbage(conn, stop):
    conn.sendall(os.urandom(1 << 20))
    stop.wait(60)


def _closes(conn, stop):
    conn.close()


SSH_BEHAVIOURS = {"silent": _never, "banner-stall": _banner_stall, "garbage": _garbage, "closes": _closes}
SSH_BEHAVIOURS.update({f"exec-{k}": v for k, v in list(SSH_BEHAVIOURS.items())})


def _gpu_lol(args, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "gpu_lol", *map(str, args)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


class Out:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"Out({self.code}, {self.out[-400:]!r}, {self.err[-800:]!r})"


@pytest.mark.parametrize("case", SSH_FAULT_CASES, ids=[c.id for c in SSH_FAULT_CASES])
def test_ssh_server_fault(case, tmp_path):
    server = RawServer(SSH_BEHAVIOURS[case.id.removeprefix("ssh-")])
    env = dict(os.environ, GPU_LOL_SSH_CONNECT_TIMEOUT="2")
    repo = _repo(tmp_path)
    if case.id.startswith("ssh-exec-"):
        from gpu_lol.launch import state

        state.save(state.Target(name="stall", kind="host", repo=str(repo), extra={
            "host": "127.0.0.1", "user": "me", "port": server.port, "workdir": str(tmp_path / "remote"),
            "venv": str(tmp_path / "remote" / ".gpu-lol" / "venv")}))
        args = ["exec", "stall", "--", "echo", "hi"]
    else:
        args = ["up", repo, "--host", f"me@127.0.0.1:{server.port}", "--yes", "--no-llm",
                "--workdir", tmp_path / "remote"]
    try:
        proc = _gpu_lol(args, env)
        out, err = proc.communicate(timeout=120)  # a hang guard, not a timing assert
    finally:
        server.close()
    check_outcome(Out(proc.returncode, out, err), case.expect)
    from gpu_lol.launch import state

    assert state.load("gpu-lol-repo") is None  # nothing recorded for a host never reached
    assert "127.0.0.1" in err


# ---- Ctrl-C --------------------------------------------------------------------------------
def _wait_for(predicate, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the command never reached the stage")


def _reading_inside(pid: int, root: Path) -> bool:
    """Whether process ``pid`` holds a file or directory under ``root`` open right now."""
    prefix = str(root.resolve()) + os.sep
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                return True
        except OSError:
            continue
    return False


def _leftovers(*roots: Path) -> list[str]:
    out = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            out += [os.path.join(dirpath, n) for n in names if n.endswith(".tmp")]
    return out


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    """One 4000-file tree for the analysis-stage interrupts (built once: file creation is slow)."""
    return _repo(tmp_path_factory.mktemp("big"), files=4000)


@pytest.mark.parametrize("case", SIGINT_CASES, ids=[c.id for c in SIGINT_CASES])
def test_sigint(case, tmp_path, isolated_home, big_tree):
    stage = case.build
    env = dict(os.environ, GPU_LOL_SSH_CONNECT_TIMEOUT="30")
    server = None
    lock = None
    repo = big_tree if stage in ("analysis", "init") else _repo(tmp_path)
    if stage == "analysis":
        args, ready = ["analyze", "--no-llm", repo], None
    elif stage == "init":
        args, ready = ["init", "--no-llm", repo], None
    elif stage == "llm":
        server = RawServer(_never)
        env.update(GPU_LOL_LLM_URL=f"http://127.0.0.1:{server.port}/v1", GPU_LOL_LLM_TIMEOUT="30")
        args, ready = ["analyze", repo], server.accepted.is_set
    elif stage == "ssh-connect":
        server = RawServer(_banner_stall)
        args = ["up", repo, "--host", f"me@127.0.0.1:{server.port}", "--yes", "--no-llm",
                "--workdir", tmp_path / "remote"]
        ready = server.accepted.is_set
    elif stage == "api-server":
        server = RawServer(_never)
        env["SKYPILOT_API_SERVER_ENDPOINT"] = f"http://127.0.0.1:{server.port}"
        args, ready = ["ls"], server.accepted.is_set
    else:  # config-set-locked: another process holds the settings lock
        import fcntl

        from gpu_lol import paths

        lock_path = paths.user_config_file().with_name("config.yaml.lock")
        paths.ensure_dir(lock_path.parent)
        lock = open(lock_path, "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        args, ready = ["config", "set", "llm.model", "m"], None
    try:
        proc = _gpu_lol(args, env, cwd=tmp_path)
        if ready is not None:
            _wait_for(ready)
            time.sleep(0.3)
        elif stage in ("analysis", "init"):
            # the moment it reads the tree (an open descriptor inside it), not a guessed delay:
            # the analysis of this tree takes about a second, less on a quiet machine
            deadline = time.monotonic() + 30
            while proc.poll() is None and not _reading_inside(proc.pid, repo) and time.monotonic() < deadline:
                time.sleep(0.002)
        else:
            time.sleep(0.8)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if server is not None:
            server.close()
        if lock is not None:
            lock.close()
    check_outcome(Out(proc.returncode, out, err), case.expect)
    assert "interrupted" in err
    assert not _leftovers(repo, isolated_home)  # no half-written file
    config = repo / ".gpu-lol.yaml"
    if config.exists():  # init finished writing before the signal: the file is whole
        from gpu_lol.config import config_file

        config_file.load(config)
        config.unlink()


# ---- races ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", RACE_CASES, ids=[c.id for c in RACE_CASES])
def test_race(case, tmp_path, isolated_home):
    env = dict(os.environ)
    if case.id == "race-config-set":
        def worker(key, values):
            for value in values:
                subprocess.run([sys.executable, "-m", "gpu_lol", "config", "set", key, value], env=env,
                               check=True, capture_output=True, timeout=60)
        threads = [threading.Thread(target=worker, args=("llm.model", [f"m{i}" for i in range(8)])),
                   threading.Thread(target=worker, args=("llm.timeout", [str(i + 1) for i in range(8)]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        from gpu_lol.config import user_config

        data = user_config.read_file()
        assert data["llm"]["model"] == "m7" and data["llm"]["timeout"] == 8.0  # no lost update
    elif case.id == "race-state-save":
        from gpu_lol.launch import state

        def save(i):
            state.save(state.Target(name=f"t{i % 4}", kind="host", repo=str(tmp_path), extra={"i": i}))
        threads = [threading.Thread(target=save, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(t.name for t in state.all_targets()) == ["t0", "t1", "t2", "t3"]
        assert not _leftovers(isolated_home)
    else:
        repo = _repo(tmp_path)
        procs = [_gpu_lol(["init", "--no-llm", "--force", repo], env) for _ in range(2)]
        for p in procs:
            p.communicate(timeout=120)
        assert all(p.returncode == 0 for p in procs)
        from gpu_lol.config import config_file

        config_file.load(repo / ".gpu-lol.yaml")
        assert not _leftovers(repo)
