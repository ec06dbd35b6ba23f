"""``notebook`` and ``code`` (and the tunnel behind the notebook) against a real OpenSSH server on 127.0.0.1.

Jupyter Lab itself is not installed here: a small real HTTP server (python's http.server)
stands in for ``jupyter-lab`` on the far side. It is a script named ``jupyter-lab`` in the host
target's virtualenv, so gpu-lol finds, starts and stops it exactly as it would the real one; it
records the arguments and environment it was started with and answers only with the right
token. VS Code cannot run here: a stub ``code`` on PATH records its arguments (said below)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gpu_lol.launch import state
from gpu_lol.launch.state import Target
from gpu_lol.machine import notebook, remote
from sshd import control_cleanup, remote_tmp, sshd_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

FAKE_JUPYTER = '''#!{python}
"""Stands in for jupyter-lab: a real HTTP server on the --ip/--port it is given."""
import http.server, json, os, sys, urllib.parse
args = sys.argv[1:]
opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
token = os.environ.get("JUPYTER_TOKEN", "")
if os.geteuid() == 0 and "--allow-root" not in args:  # as the real one does
    sys.exit("[C ServerApp] Running as root is not recommended. Use --allow-root to bypass.")
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "started.json"), "w") as fh:
    json.dump({{"args": args, "cwd": os.getcwd(), "token_set": bool(token)}}, fh)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        ok = query.get("token") == [token] and token
        body = json.dumps({{"fake": "jupyter", "root": opts.get("ServerApp.root_dir")}}).encode()
        self.send_response(200 if ok else 403)
        self.end_headers()
        self.wfile.write(body if ok else b"forbidden")
    def log_message(self, *a):
        pass

http.server.HTTPServer((opts["ip"], int(opts["port"])), Handler).serve_forever()
'''


@pytest.fixture
def nbox(sshd_server, remote_tmp, tmp_path):  # noqa: F811
    workdir = remote_tmp / "work dir"
    workdir.mkdir()
    venv = remote_tmp / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export PATH="{venv}/bin:$PATH"\n')
    repo = tmp_path / "repo"
    repo.mkdir()
    target = Target(name="box", kind="host", repo=str(repo), spec={},
                    extra={"host": sshd_server.host, "user": sshd_server.user, "port": sshd_server.port,
                           "identity": str(sshd_server.identity), "workdir": str(workdir), "venv": str(venv)})
    state.save(target)
    yield target, workdir, venv
    try:
        notebook.stop_jupyter(target)
    finally:
        remote.close(target)


def install_fake_jupyter(venv: Path) -> None:
    exe = venv / "bin" / "jupyter-lab"
    exe.write_text(FAKE_JUPYTER.format(python=sys.executable))
    exe.chmod(0o755)


def _read_line(proc, needle: str, timeout: float = 60) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if not line:
                break
            if needle in line:
                return line
    proc.kill()
    try:  # an ssh child may still hold the pipes: never wait on them for ever
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        err = "(stderr still held open by a child)"
    raise AssertionError(f"no line with {needle!r}; stderr: {err}")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap counts as gone)."""
    try:
        state_field = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state_field != "Z"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_notebook_starts_forwards_prints_the_url_and_reconnects(nbox, gpu_lol_exe):
    target, workdir, venv = nbox
    install_fake_jupyter(venv)
    proc = subprocess.Popen([*gpu_lol_exe, "notebook", "box"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    line = _read_line(proc, "Jupyter Lab on box: ")
    url = line.split(": ", 1)[1].strip()
    assert url.startswith("http://127.0.0.1:") and "/lab?token=" in url
    token = url.split("token=", 1)[1]
    # The forwarded local port reaches the server on the far side, with its token only.
    status, body = _get(url)
    assert status == 200 and json.loads(body)["root"] == str(workdir)
    assert _get(url.replace(token, "wrong"))[0] == 403
    started = json.loads((venv / "started.json").read_text())
    assert "--no-browser" in started["args"] and "--ip=127.0.0.1" in started["args"]
    assert "--ServerApp.port_retries=0" in started["args"]
    assert started["cwd"] == str(workdir) and started["token_set"]
    assert not any(token in a for a in started["args"])  # never on a command line
    server_file = workdir / ".gpu-lol" / "notebook" / "server.json"
    assert oct(server_file.stat().st_mode & 0o777) == "0o600"
    pid = json.loads(server_file.read_text())["pid"]
    # Ctrl-C closes the tunnel only: the server keeps running.
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "keeps running on box" in err
    assert token not in err  # the token goes to stdout only
    assert _alive(pid)
    # The tunnel is gone (another program on this machine may take the port: only check that
    # our server is no longer reachable through it).
    try:
        closed = _get(url)[0] != 200
    except OSError:
        closed = True
    assert closed
    # Again: the same server (same token) through a new tunnel.
    proc = subprocess.Popen([*gpu_lol_exe, "notebook", "box"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    line = _read_line(proc, "Jupyter Lab on box: ")
    assert line.strip().endswith("token=" + token)
    assert _get(line.split(": ", 1)[1].strip())[0] == 200
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "reconnecting" in err
    # --stop ends it.
    done = subprocess.run([*gpu_lol_exe, "notebook", "box", "--stop"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "stopped Jupyter Lab on box" in done.stderr
    for _ in range(60):
        if not _alive(pid):
            break
        time.sleep(0.25)
    assert not _alive(pid)
    assert not server_file.exists()


def test_notebook_without_jupyter_says_how_to_install(nbox, run_cli):
    r = run_cli("notebook", "box")
    assert r.code == 1
    assert "Jupyter Lab (jupyter-lab) is not installed on box" in r.err
    assert "gpu-lol notebook box --install" in r.err


def test_a_server_that_dies_at_start_shows_its_log(nbox, run_cli):
    _, _, venv = nbox
    exe = venv / "bin" / "jupyter-lab"
    exe.write_text("#!/bin/sh\necho 'ImportError: no module named jupyterlab_server' >&2\nexit 1\n")
    exe.chmod(0o755)
    r = run_cli("notebook", "box")
    assert r.code == 1 and "did not start on box" in r.err and "jupyterlab_server" in r.err


def test_forward_to_a_taken_local_port_is_an_error(nbox):
    target, _, _ = nbox
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        from gpu_lol.errors import UsageError

        with pytest.raises(UsageError, match="in use"):
            notebook.forward(target, 22, taken)


def test_forward_argv_uses_its_own_connection_and_exit_on_failure(nbox):
    target, _, _ = nbox
    argv = notebook.forward_argv(target, [(8888, 9999)])
    assert "ExitOnForwardFailure=yes" in argv and "ControlPath=none" in argv and "-tt" in argv
    assert argv[argv.index("-L") + 1] == "127.0.0.1:8888:127.0.0.1:9999"
    assert argv[-1] == notebook.HOLD_COMMAND
    assert "-N" in notebook.forward_argv(target, [(1, 2)], hold_terminal=False)


def test_the_tunnel_session_holds_a_terminal_on_the_machine(nbox):
    """SkyPilot's autostop counts sessions with a terminal: the tunnel's sleep must have one."""
    target, _, _ = nbox
    tunnel = notebook.forward(target, 22)
    try:
        out = remote.capture(target, "ps -eo tty=,args= | grep '[s]leep 2147483647'", cd="skip", login=False)
        assert out.returncode == 0 and "pts/" in out.stdout, out
    finally:
        tunnel.close()


# ---------------------------------------------------------------------------------------------
# code


def test_code_without_vscode_says_how(nbox, run_cli, monkeypatch, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    import shutil

    (bindir / "ssh").symlink_to(shutil.which("ssh"))
    monkeypatch.setenv("PATH", str(bindir))
    r = run_cli("code", "box")
    assert r.code == 1
    assert "`code` (VS Code's command-line launcher) is not on PATH" in r.err
    assert "ms-vscode-remote.remote-ssh" in r.err


def test_code_opens_the_workdir_over_remote_ssh(nbox, run_cli, monkeypatch, tmp_path):
    """VS Code cannot run here: a stub `code` on PATH records its arguments. The ssh side is
    real: the alias gpu-lol writes must reach the sshd through ~/.ssh/config, as VS Code would."""
    target, workdir, _ = nbox
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "code-args.json"
    stub = bindir / "code"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    # No terminal and no --yes: ~/.ssh/config is never edited unasked.
    r = run_cli("code", "box")
    assert r.code == 2 and "Include" in r.err
    assert not (Path.home() / ".ssh" / "config").exists()
    (Path.home() / ".ssh").mkdir(exist_ok=True)
    (Path.home() / ".ssh" / "config").write_text("Host other\n  User me\n")
    r = run_cli("code", "box", "--yes")
    assert r.code == 0, r
    assert json.loads(record.read_text()) == ["--remote", "ssh-remote+box", str(workdir)]
    config = (Path.home() / ".ssh" / "config").read_text()
    assert config.index("Include") < config.index("Host other")
    assert (Path.home() / ".ssh" / "config.gpu-lol.bak").read_text() == "Host other\n  User me\n"
    # What VS Code will do: plain ssh by the alias, with only ~/.ssh/config (named with -F: ssh
    # takes ~ from the password database, not from the test's HOME).
    out = subprocess.run(["ssh", "-F", str(Path.home() / ".ssh" / "config"), "-o", "BatchMode=yes", "box", "pwd"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    # Again: nothing more is added.
    r = run_cli("code", "box", "--print")
    assert r.code == 0 and r.out.strip() == f"code --remote ssh-remote+box '{workdir}'"
    assert (Path.home() / ".ssh" / "config").read_text().count("Include") == 1


def test_up_of_an_interactive_spec_points_at_notebook():
    from gpu_lol.launch import connect_hints

    assert connect_hints("c", {"workload_type": "interactive"})[0].startswith("gpu-lol notebook c")
    assert not any("notebook" in h for h in connect_hints("c", {"workload_type": "training"}))
