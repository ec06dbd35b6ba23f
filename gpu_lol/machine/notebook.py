"""Interactive work on a machine: Jupyter Lab through an SSH tunnel, VS Code Remote-SSH.

* :func:`forward` is the transport's port forward (:func:`gpu_lol.machine.remote.open_forward`,
  the one ``gpu-lol forward`` uses): ``ssh -L 127.0.0.1:LOCAL:127.0.0.1:REMOTE`` with the target's
  own config on a connection of its own (not the shared master, so the tunnel lives exactly as
  long as this process), ``ExitOnForwardFailure=yes`` (a port that cannot be bound is an error,
  not a silent tunnel-less ssh), and a session holding a terminal so autostop sees it.
* :func:`start_jupyter` starts ``jupyter-lab`` on the machine in the workdir (the host's venv
  active), bound to the machine's 127.0.0.1 only, on a free port, detached from the SSH session
  so it survives the tunnel. The token is made here and sent over the SSH session's stdin (never
  on a command line, where other users of the machine could see it in ``ps``); the server's
  state (pid, port, token) is kept in ``<workdir>/.gpu-lol/notebook/`` with mode 0600, so
  ``gpu-lol notebook`` again reconnects to the same server and its kernels.
* :func:`code_command` builds ``code --remote ssh-remote+ALIAS PATH`` for VS Code.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gpu_lol.errors import OperationError, UsageError
from gpu_lol.launch.state import KIND_HOST, Target
from gpu_lol.machine import remote

JUPYTER = "jupyter-lab"
START_TIMEOUT_S = 90
DEFAULT_LOCAL_PORT = 8888


# ---------------------------------------------------------------------------------------------
# Ports and the tunnel


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_local_port(preferred: int | None = None) -> int:
    """``preferred`` when it is free on 127.0.0.1, otherwise one the kernel picks."""
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_port(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 < value < 65536:
        raise UsageError(f"{what} {value} is not a port number", "ports are 1-65535")
    return value


# The tunnel is the transport's one port forward (gpu_lol.machine.remote.open_forward, which
# `gpu-lol forward` uses too), with a session that holds a terminal: SkyPilot's autostop counts
# those as activity, so an open notebook keeps its cluster up (see remote.HOLD_COMMAND).
HOLD_COMMAND = remote.HOLD_COMMAND
Tunnel = remote.Forward


def forward_argv(target: Target, forwards: list[tuple[int, int]], *, hold_terminal: bool = True) -> list[str]:
    """``ssh`` argv that forwards each (local, remote) port pair to the machine's 127.0.0.1, where
    Jupyter listens (``hold_terminal``: with a session that holds a terminal; otherwise ``-N``)."""
    return remote.forward_argv(target, forwards, far_host="127.0.0.1", hold_terminal=hold_terminal)


def forward(target: Target, remote_port: int, local_port: int | None = None, *,
            timeout: float = 30) -> Tunnel:
    """Open the tunnel and wait until the local port accepts connections."""
    check_port(remote_port, "remote port")
    if local_port is not None:
        check_port(local_port, "local port")
        if not port_is_free(local_port):
            raise UsageError(f"local port {local_port} is in use", "pick another with --port, or omit it")
    else:
        local_port = free_local_port()
    return remote.open_forward(target, [(local_port, remote_port)], far_host="127.0.0.1", hold_terminal=True,
                               timeout=timeout, port_hint="pick another local port with --port")


def wait_http(url: str, timeout: float = 20) -> int:
    """GET ``url`` until it answers (any HTTP status); returns the status."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own tunnel
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
            time.sleep(0.3)
    raise OperationError(f"nothing answers through the tunnel ({last})", None)


# ---------------------------------------------------------------------------------------------
# Jupyter on the machine


def state_dir(target: Target) -> str:
    return remote.host_meta_dir(remote.workdir_of(target)) + "/notebook"


@dataclass
class Server:
    pid: int
    port: int
    token: str
    reused: bool = False


def _status_script(target: Target) -> str:
    """Is a server we started still running? Prints ``state=<json>`` when it is."""
    sd = remote.shell_path(state_dir(target))
    return (f"f={sd}/server.json\n"
            "if [ -f \"$f\" ]; then pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' \"$f\")\n"
            "  if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null; then printf 'state=%s\\n' \"$(tr -d '\\n' < \"$f\")\"; fi\n"
            "fi\n"
            f"if command -v {JUPYTER} >/dev/null 2>&1; then echo jupyter=yes; else echo jupyter=no; fi\n")


def _parse_kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            out[key] = value
    return out


def status(target: Target) -> tuple[Server | None, bool]:
    """(the running server gpu-lol started, or None; whether jupyter-lab is installed)."""
    result = remote.capture(target, _status_script(target), cd="try", timeout=60)
    values = _parse_kv(result.stdout)
    server = None
    if values.get("state"):
        try:
            data = json.loads(values["state"])
            server = Server(pid=int(data["pid"]), port=int(data["port"]), token=str(data["token"]), reused=True)
        except (ValueError, KeyError, TypeError):
            server = None
    return server, values.get("jupyter") == "yes"


def install(target: Target) -> None:
    """``pip install jupyterlab`` in the machine's environment (the host's venv), output live."""
    from gpu_lol.console import info

    info(f"installing Jupyter Lab on {target.name} (python -m pip install jupyterlab) ...")
    command = ("if command -v python >/dev/null 2>&1; then py=python; else py=python3; fi; "
               "\"$py\" -m pip install jupyterlab")
    rc = remote.run(target, command, stdout=__import__("sys").stderr)
    if rc != 0:
        raise OperationError(f"installing Jupyter Lab on {target.name} failed (exit {rc})",
                             "see pip's output above; add jupyterlab to the requirements and set it up again")


def _start_script(target: Target, wait_s: int) -> str:
    """Start jupyter-lab detached; the token arrives on stdin. Prints port=/pid= or why not."""
    sd = remote.shell_path(state_dir(target))
    return "\n".join([
        "umask 077",
        "IFS= read -r JUPYTER_TOKEN || exit 90",
        "export JUPYTER_TOKEN",
        f"mkdir -p {sd} || exit 91",
        "port=$( (python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); "
        "print(s.getsockname()[1])' || python -c 'import socket; s=socket.socket(); "
        "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])') 2>/dev/null)",
        "[ -n \"$port\" ] || { echo 'gpu-lol: no python on the machine to pick a free port' >&2; exit 92; }",
        f"log={sd}/jupyter.log",
        # setsid + nohup: the server leaves the SSH session's process group and survives it.
        "if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=; fi",
        # Cloud GPU containers often log in as root, which Jupyter refuses without --allow-root.
        "if [ \"$(id -u)\" = 0 ]; then as_root=--allow-root; else as_root=; fi",
        f"$detach nohup {JUPYTER} --no-browser --ip=127.0.0.1 --port=\"$port\" --ServerApp.port_retries=0 "
        "--ServerApp.root_dir=\"$PWD\" $as_root > \"$log\" 2>&1 < /dev/null &",
        "pid=$!",
        "i=0",
        f"while [ $i -lt {int(wait_s * 4)} ]; do",
        "  if ! kill -0 \"$pid\" 2>/dev/null; then echo 'gpu-lol: jupyter-lab exited:' >&2; tail -n 15 \"$log\" >&2; exit 93; fi",
        "  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then",
        "    printf '{\"pid\": %s, \"port\": %s, \"token\": \"%s\"}\\n' \"$pid\" \"$port\" \"$JUPYTER_TOKEN\" "
        f"> {sd}/server.json",
        "    echo \"port=$port\"; echo \"pid=$pid\"; exit 0",
        "  fi",
        "  sleep 0.25; i=$((i+1))",
        "done",
        "echo 'gpu-lol: jupyter-lab did not open its port in time:' >&2; tail -n 15 \"$log\" >&2",
        "kill \"$pid\" 2>/dev/null; exit 94",
    ]) + "\n"


def start_jupyter(target: Target, *, wait_s: int = START_TIMEOUT_S) -> Server:
    import secrets

    token = secrets.token_hex(24)
    result = remote.capture(target, _start_script(target, wait_s), input=token + "\n", cd="require",
                            timeout=wait_s + 60)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        detail = " | ".join(lines[-6:]) if lines else f"exit {result.returncode}"
        raise OperationError(f"Jupyter Lab did not start on {target.name}: {detail}",
                             f"see {state_dir(target)}/jupyter.log on the machine "
                             f"(gpu-lol exec {target.name} -- cat {shlex.quote(state_dir(target) + '/jupyter.log')})")
    values = _parse_kv(result.stdout)
    try:
        return Server(pid=int(values["pid"]), port=int(values["port"]), token=token)
    except (KeyError, ValueError):
        raise OperationError(f"Jupyter Lab on {target.name} gave no port", None) from None


def stop_jupyter(target: Target) -> bool:
    """Stop the server gpu-lol started (and its kernels); False when none was running."""
    sd = remote.shell_path(state_dir(target))
    script = (f"f={sd}/server.json\n[ -f \"$f\" ] || exit 3\n"
              "pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' \"$f\")\nrm -f \"$f\"\n"
              "[ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null || exit 3\n"
              "kill -TERM -- -\"$pid\" 2>/dev/null || kill -TERM \"$pid\"\n"
              "for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 \"$pid\" 2>/dev/null || exit 0; sleep 0.5; done\n"
              "kill -KILL -- -\"$pid\" 2>/dev/null || kill -KILL \"$pid\" 2>/dev/null; exit 0\n")
    result = remote.capture(target, script, cd="skip", login=False, timeout=60)
    return result.returncode == 0


def notebook_url(port: int, token: str, path: str = "lab") -> str:
    return f"http://127.0.0.1:{port}/{path}?token={token}"


# ---------------------------------------------------------------------------------------------
# VS Code


def vscode_alias(target: Target) -> str:
    """The ssh host name VS Code connects to: the cluster's (SkyPilot puts ``Include
    ~/.sky/generated/ssh/*`` in ``~/.ssh/config``) or, for a host, the target's name from the
    config gpu-lol writes for editors (see :func:`write_editor_config`)."""
    return target.name


def editor_config_dir() -> Path:
    from gpu_lol import paths

    return paths.home() / "ssh" / "editors"


def write_editor_config(target: Target) -> Path:
    """``Host <name>`` with the host target's address, user, port, key and known_hosts."""
    from gpu_lol import paths

    extra = target.extra
    value = remote._ssh_config_value
    lines = [f"# Written by gpu-lol for editors (VS Code Remote-SSH) for host target '{target.name}'.",
             f"Host {value(target.name)}",
             f"  HostName {value(str(extra['host']))}"]
    if extra.get("user"):
        lines.append(f"  User {value(str(extra['user']))}")
    if extra.get("port"):
        lines.append(f"  Port {int(extra['port'])}")
    if extra.get("identity"):
        lines += [f"  IdentityFile {value(str(extra['identity']))}", "  IdentitiesOnly yes"]
    lines += [f"  UserKnownHostsFile {value(str(remote.known_hosts_file()))}",
              "  StrictHostKeyChecking accept-new", ""]
    directory = paths.ensure_dir(editor_config_dir())
    path = directory / f"{target.name}.conf"
    paths.write_private(path, "\n".join(lines))
    return path


def include_line(target: Target) -> str:
    if target.kind == KIND_HOST:
        return f"Include {editor_config_dir()}/*.conf"
    return "Include ~/.sky/generated/ssh/*"


def user_config_includes(line: str) -> bool:
    config = Path.home() / ".ssh" / "config"
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    wanted = line.split(None, 1)[1].strip()
    home = str(Path.home())
    for raw in text.splitlines():
        words = raw.strip().split(None, 1)
        if len(words) == 2 and words[0].lower() == "include":
            value = words[1].strip().strip('"')
            if value == wanted or value.replace("~", home, 1) == wanted.replace("~", home, 1):
                return True
    return False


def add_include(line: str) -> Path:
    """Put ``line`` at the top of ``~/.ssh/config`` (an Include inside a Host block would only
    apply to that host); the old file is kept as ``config.gpu-lol.bak``."""
    config = Path.home() / ".ssh" / "config"
    config.parent.mkdir(mode=0o700, exist_ok=True)
    old = config.read_text(encoding="utf-8") if config.exists() else ""
    if old:
        backup = config.with_name("config.gpu-lol.bak")
        backup.write_text(old, encoding="utf-8")
        os.chmod(backup, 0o600)
    config.write_text(f"# Added by gpu-lol (editors reach gpu-lol's machines by name)\n{line}\n\n{old}",
                      encoding="utf-8")
    os.chmod(config, 0o600)
    return config


def remote_workdir_absolute(target: Target) -> str:
    """The workdir as an absolute path (VS Code does not expand ``~``); it must exist."""
    result = remote.capture(target, "pwd", cd="require", login=False, timeout=60)
    path = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not path.startswith("/"):
        message = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[0]
        raise OperationError(f"cannot open the workdir on {target.name}: {message}",
                             f"sync it first: gpu-lol exec {target.name} --sync -- true")
    return path


def code_command(alias: str, path: str, exe: str = "code") -> list[str]:
    return [exe, "--remote", f"ssh-remote+{alias}", path]


def find_code(exe: str = "code") -> str | None:
    return shutil.which(exe)
