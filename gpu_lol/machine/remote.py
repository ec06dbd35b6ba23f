"""The transport to a machine: OpenSSH, inline, in the synced workdir.

A target (a SkyPilot cluster or the user's own host) becomes an ``ssh`` argv:

* SkyPilot clusters: ``ssh -F ~/.sky/generated/ssh/<cluster> <cluster>`` (the config SkyPilot
  writes at launch), workdir ``~/sky_workdir``.
* Host targets: ``ssh -F $GPU_LOL_HOME/ssh/<name>.conf <host>``, a config gpu-lol writes with
  its own ``known_hosts`` (``StrictHostKeyChecking accept-new``); the user's ``~/.ssh/config`` is
  included after it, so jump hosts and aliases defined there still work.

Every call shares one master connection per machine (``ControlMaster``/``ControlPersist``, the
socket under ``$GPU_LOL_HOME``), so repeated commands skip the handshake. The socket is keyed on
the target (its name, its ssh config file and that file's contents) as well as ``%C``: clusters
that run in a container on their VM (Lambda) all get ``HostName localhost``, ``Port 10022`` and
a ProxyCommand, so ``%C`` alone would hand cluster B's commands to cluster A's connection.
Non-interactive calls use ``BatchMode`` and a connect timeout: they fail fast instead of prompting.

Commands run as ``bash --login -c SCRIPT`` (the login profile loads the image's environment, as
SkyPilot does for its own commands) after ``cd`` into the workdir, with the host's virtualenv
activated and the spec's non-secret ``envs`` exported. ``run`` streams the remote output live and
returns the remote exit code; Ctrl-C is delivered to the remote process group (through the pty
when there is a terminal, otherwise by signalling the remote group over the master connection)
and the output keeps streaming until the remote command exits.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_lol import paths
from gpu_lol.errors import OperationError, UsageError
from gpu_lol.launch.state import KIND_HOST, KIND_SKY, Target

if TYPE_CHECKING:
    from gpu_lol.launch.sync import SyncPlan

SKY_WORKDIR = "~/sky_workdir"
# GPU_LOL_SSH_CONNECT_TIMEOUT (seconds) overrides it: for slow links, and for tests of stalling servers.
CONNECT_TIMEOUT_S = int(os.environ.get("GPU_LOL_SSH_CONNECT_TIMEOUT", "").strip() or 15) \
    if os.environ.get("GPU_LOL_SSH_CONNECT_TIMEOUT", "").strip().isdigit() else 15
CONTROL_PERSIST = "10m"
SSH_EXIT_ERROR = 255
# ssh appends ".XXXXXXXXXXXXXXXX" to the control path while it creates the socket; Unix socket
# paths hold 104 bytes on macOS (108 on Linux). A socket name is 16 hex characters of the
# target's own key, a dash and %C (40 hex characters).
_SOCKET_PATH_MAX = 104
_TARGET_KEY_LEN = 16
_CONTROL_NAME_LEN = _TARGET_KEY_LEN + 1 + 40 + 17 + 1
# Where a host target keeps gpu-lol's own files, relative to its workdir.
HOST_META_DIR = ".gpu-lol"


@dataclass(frozen=True)
class Endpoint:
    """How to reach one target: the ssh config file, the destination alias and the workdir."""

    target: Target
    config_file: Path
    alias: str
    workdir: str  # as the remote shell sees it: absolute or "~/..."
    venv: str | None = None  # host targets: the virtualenv to activate

    @property
    def label(self) -> str:
        if self.target.kind == KIND_HOST:
            return f"{self.target.name} ({host_label(self.target)})"
        return self.target.name


# ---------------------------------------------------------------------------------------------
# Paths and ssh config


def sky_ssh_config(cluster: str) -> Path:
    return paths.sky_home() / "generated" / "ssh" / cluster


def host_ssh_config(name: str) -> Path:
    return paths.home() / "ssh" / f"{name}.conf"


def known_hosts_file() -> Path:
    return paths.home() / "ssh" / "known_hosts"


def host_label(target: Target) -> str:
    extra = target.extra
    text = extra.get("host", "?")
    if ":" in text:
        text = f"[{text}]"
    if extra.get("user"):
        text = f"{extra['user']}@{text}"
    if extra.get("port"):
        text += f":{extra['port']}"
    return text


def workdir_of(target: Target) -> str:
    workdir = target.extra.get("workdir")
    if workdir:
        return str(workdir)
    if target.kind == KIND_SKY:
        return SKY_WORKDIR
    raise OperationError(f"the record of '{target.name}' has no workdir",
                         f"run `gpu-lol down {target.name}` and `gpu-lol up --host ...` again")


def host_meta_dir(workdir: str) -> str:
    return workdir.rstrip("/") + "/" + HOST_META_DIR


def _ssh_config_value(value: str) -> str:
    """A value for an ssh_config line: quoted when it holds spaces."""
    if any(c in value for c in "\r\n\0"):
        raise UsageError(f"'{value!r}' cannot go into an ssh config", None)
    if any(c.isspace() for c in value) or '"' in value or not value:
        if '"' in value:
            raise UsageError(f"'{value}' has a double quote; ssh configs cannot hold it", None)
        return f'"{value}"'
    return value


def render_host_config(target: Target) -> str:
    """The ssh config gpu-lol writes for a host target."""
    extra = target.extra
    host = str(extra.get("host") or "")
    if not host or host.startswith("-"):
        raise OperationError(f"the record of '{target.name}' has no valid host",
                             f"run `gpu-lol down {target.name}` and `gpu-lol up --host ...` again")
    lines = [
        f"# Written by gpu-lol for host target '{target.name}'; rewritten on each use.",
        "# Put your own settings in ~/.ssh/config (included below).",
        f"Host {_ssh_config_value(host)}",
    ]
    if extra.get("user"):
        lines.append(f"  User {_ssh_config_value(str(extra['user']))}")
    if extra.get("port"):
        lines.append(f"  Port {int(extra['port'])}")
    if extra.get("identity"):
        lines.append(f"  IdentityFile {_ssh_config_value(str(extra['identity']))}")
        lines.append("  IdentitiesOnly yes")
    lines += [
        f"  UserKnownHostsFile {_ssh_config_value(str(known_hosts_file()))}",
        "  StrictHostKeyChecking accept-new",
        "  ServerAliveInterval 15",
        "  ServerAliveCountMax 4",
    ]
    user_config = Path.home() / ".ssh" / "config"
    lines += ["Match all", f"  Include {_ssh_config_value(str(user_config))}", ""]
    return "\n".join(lines)


def write_host_config(target: Target) -> Path:
    path = host_ssh_config(target.name)
    text = render_host_config(target)
    paths.ensure_dir(path.parent)
    known = known_hosts_file()  # ssh would create it 0644; everything under GPU_LOL_HOME is private
    paths.ensure_dir(known.parent)
    try:
        os.close(os.open(known, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        if not known.is_symlink() and os.stat(known).st_mode & 0o077:
            os.chmod(known, 0o600)
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except OSError:
        pass
    return paths.write_private(path, text)


def endpoint(target: Target) -> Endpoint:
    """Resolve a target to its ssh config, alias and workdir (clear errors when it cannot)."""
    if target.kind == KIND_SKY:
        config = sky_ssh_config(target.name)
        if not config.is_file():
            raise OperationError(
                f"no SSH config for cluster '{target.name}' ({config} is missing)",
                f"`gpu-lol info {target.name}` rewrites it when the cluster is up (or `sky status "
                f"{target.name}`); if the cluster is gone, launch again with `gpu-lol up`")
        return Endpoint(target, config, target.name, workdir_of(target))
    if target.kind == KIND_HOST:
        config = write_host_config(target)
        venv = target.extra.get("venv") or None
        return Endpoint(target, config, str(target.extra["host"]), workdir_of(target), venv)
    raise OperationError(f"'{target.name}' has an unknown kind '{target.kind}'",
                         f"delete its record with `gpu-lol down {target.name}`")


# ---------------------------------------------------------------------------------------------
# ssh argv


def control_dir() -> Path | None:
    """A private directory for ControlMaster sockets, short enough for the socket path limit."""
    preferred = paths.home() / "cm"
    if len(str(preferred)) + _CONTROL_NAME_LEN < _SOCKET_PATH_MAX:
        try:
            return paths.ensure_dir(preferred)
        except OSError:
            pass
    # $GPU_LOL_HOME is too deep: a short per-user directory in /tmp, one per gpu-lol home.
    digest = hashlib.sha1(str(paths.home()).encode()).hexdigest()[:8]
    base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    short = base / f"gpu-lol-{os.getuid()}-{digest}"
    try:
        short.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(short)
    except OSError:
        return None
    # Never use a directory someone else created or can write to.
    import stat as stat_mod

    if not stat_mod.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    if len(str(short)) + _CONTROL_NAME_LEN >= _SOCKET_PATH_MAX:
        return None
    return short


def control_key(ep: Endpoint) -> str:
    """The part of the control socket's name that belongs to one target: its name, alias, ssh
    config path and that config's text (a relaunched cluster gets a new config, so a new key)."""
    try:
        text = ep.config_file.read_bytes()
    except OSError:
        text = b""
    digest = hashlib.sha256()
    for part in (ep.target.kind, ep.target.name, ep.alias, str(ep.config_file)):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(text)
    return digest.hexdigest()[:_TARGET_KEY_LEN]


def ssh_options(*, batch: bool, multiplex: bool = True, connect_timeout: int = CONNECT_TIMEOUT_S,
                key: str | None = None) -> list[str]:
    """Common ssh options. ``key`` (see :func:`control_key`) names the target's master socket;
    without one there is no multiplexing (a socket keyed on %C alone could cross clusters)."""
    opts = ["-o", f"ConnectTimeout={int(connect_timeout)}", "-o", "LogLevel=ERROR"]
    if batch:
        opts += ["-o", "BatchMode=yes"]
    directory = control_dir() if multiplex and key else None
    if directory is not None:
        opts += ["-o", "ControlMaster=auto", "-o", f"ControlPath={directory}/{key}-%C",
                 "-o", f"ControlPersist={CONTROL_PERSIST}"]
    else:
        opts += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    return opts


def _ssh_prefix(ep: Endpoint, *, batch: bool, connect_timeout: int = CONNECT_TIMEOUT_S,
                multiplex: bool = True) -> list[str]:
    return ["ssh", "-F", str(ep.config_file),
            *ssh_options(batch=batch, connect_timeout=connect_timeout, key=control_key(ep) if multiplex else None)]


def ssh_argv(target: Target, *, interactive: bool = False) -> list[str]:
    """``ssh`` argv that reaches ``target`` (append a remote command to run one).

    ``interactive`` forces a terminal (``-tt``) and allows prompts (no ``BatchMode``).
    """
    ep = endpoint(target)
    argv = _ssh_prefix(ep, batch=not interactive)
    if interactive:
        argv.append("-tt")
    return argv + [ep.alias]


def ssh_command_for_rsync(target: Target) -> list[str]:
    """The ssh argv rsync uses as its remote shell (rsync adds the host itself)."""
    return _ssh_prefix(endpoint(target), batch=True)


# ---------------------------------------------------------------------------------------------
# Remote scripts


def shell_path(path: str) -> str:
    """Quote a remote path for the shell, keeping a leading ``~/`` expandable."""
    if path == "~":
        return "~"
    if path.startswith("~/"):
        rest = path[2:]
        return "~/" + shlex.quote(rest) if rest else "~/"
    return shlex.quote(path)


def command_text(command: list[str] | str) -> str:
    """One argument is a shell command line run as written; several are quoted one by one."""
    if isinstance(command, str):
        return command
    command = list(command)
    if len(command) == 1:
        return command[0]
    return " ".join(shlex.quote(part) for part in command)


def _env_exports(target: Target) -> list[str]:
    from gpu_lol.secrets.sensitive import is_secret_env_name

    out = []
    envs = (target.spec or {}).get("envs") or {}
    for key, value in envs.items():
        if not isinstance(key, str) or not key.isidentifier() or is_secret_env_name(key):
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(f"export {key}={shlex.quote(str(value))}")
    return out


def prelude(ep: Endpoint, *, must_cd: bool = True, quiet: bool = False) -> list[str]:
    """Script lines that enter the workdir, activate the host's venv and export the envs."""
    wd = shell_path(ep.workdir)
    name = ep.target.name
    if quiet:
        lines = [f"cd {wd} 2>/dev/null || true"]
    elif must_cd:
        lines = [f"cd {wd} 2>/dev/null || {{ echo {shlex.quote(f'gpu-lol: the workdir {ep.workdir} does not exist on {name}')}"
                 f" >&2; echo {shlex.quote(f'gpu-lol: sync it with: gpu-lol exec {name} --sync -- true')} >&2; exit 1; }}"]
    else:
        lines = [f"cd {wd} 2>/dev/null || echo {shlex.quote(f'gpu-lol: the workdir {ep.workdir} does not exist on {name}; staying in the home directory')} >&2"]
    if ep.venv:
        activate = shell_path(ep.venv.rstrip("/") + "/bin/activate")
        lines.append(f"if [ -f {activate} ]; then . {activate}; else echo "
                     f"{shlex.quote(f'gpu-lol: warning: no virtualenv at {ep.venv} (did setup finish? see gpu-lol logs {name})')} >&2; fi")
    lines += _env_exports(ep.target)
    if ep.target.kind == KIND_SKY:
        # the secrets setup wrote from SkyPilot's secrets (mode 600; never printed)
        from gpu_lol.launch.skypilot import SECRETS_FILE

        secrets = shell_path(SECRETS_FILE)
        lines.append(f"if [ -r {secrets} ]; then . {secrets}; fi")
    return lines


def wrap_login(script: str) -> str:
    """The remote command: the script in a bash login shell, whatever the user's shell is."""
    return wrap_bash(script, login=True)


def wrap_bash(script: str, *, login: bool = False) -> str:
    """``exec bash [--login] -c SCRIPT`` that every login shell reads alike.

    sh, bash and zsh take a single-quoted word literally, but fish unescapes ``\\`` and ``\'``
    inside single quotes: a script with a backslash travels base64-encoded instead (the outer
    word then holds no backslash or quote for any shell to interpret) and bash decodes it.
    """
    head = "exec bash --login -c " if login else "exec bash -c "
    if "\\" not in script:
        return head + shlex.quote(script)
    import base64

    encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
    return head + "'eval \"$(echo " + encoded + " | base64 -d)\"'"


def exec_script(ep: Endpoint, command: list[str] | str, *, pidfile: str | None = None) -> str:
    lines = prelude(ep)
    if pidfile:
        # The login bash is the process-group leader of the session (sshd calls setsid and the
        # user's shell execs it), so "kill -- -PID" reaches the command and its children.
        lines.append(f"{{ echo $$ > {shlex.quote(pidfile)}; }} 2>/dev/null || true")
        lines.append(f"trap 'rm -f {shlex.quote(pidfile)}' EXIT")
    lines.append(command_text(command))
    return "\n".join(lines) + "\n"


def interactive_script(ep: Endpoint, command: list[str] | str | None) -> str:
    lines = prelude(ep, must_cd=bool(command))
    if command:
        lines.append(command_text(command))
        return "\n".join(lines) + "\n"
    # An interactive shell that keeps the workdir, the venv and the envs: bash reads its rc
    # file and then ours re-activates the venv (a .bashrc often resets PATH).
    if ep.venv:
        rcfile = shell_path(host_meta_dir(ep.workdir) + "/bashrc")
        lines.append(f"if [ -f {rcfile} ]; then exec bash --rcfile {rcfile} -i; fi")
    lines.append("exec bash -i")
    return "\n".join(lines) + "\n"


def host_rcfile(target: Target) -> str:
    """The rc file ``gpu-lol ssh`` starts on a host: the user's bashrc, then the venv."""
    ep_venv = target.extra.get("venv")
    workdir = workdir_of(target)
    lines = ["# Written by gpu-lol: your ~/.bashrc, then this target's virtualenv and workdir.",
             "[ -f ~/.bashrc ] && . ~/.bashrc"]
    if ep_venv:
        activate = shell_path(str(ep_venv).rstrip("/") + "/bin/activate")
        lines.append(f"[ -f {activate} ] && . {activate}")
    lines.append(f"cd {shell_path(workdir)} 2>/dev/null || true")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Running


def _error_hint(message: str, ep: Endpoint) -> str:
    lower = message.lower()
    name = ep.target.name
    if ep.target.kind == KIND_SKY:
        return f"check the cluster with `gpu-lol ls` or `sky status {name}`"
    port = ep.target.extra.get("port") or 22
    if "connection refused" in lower:
        return f"is sshd running on {ep.target.extra.get('host')} port {port}?"
    if "permission denied" in lower:
        return ("the host refused the key: pass --identity KEY whose .pub is in the host's "
                "~/.ssh/authorized_keys")
    if "could not resolve" in lower or "name or service not known" in lower:
        return "check the host name (or its entry in ~/.ssh/config)"
    if "timed out" in lower:
        return "the host did not answer: is it up and reachable (VPN, firewall)?"
    if "host key" in lower or "identification has changed" in lower:
        return (f"the host key changed since gpu-lol first connected; if that is expected, delete "
                f"the host's line from {known_hosts_file()}")
    return f"try `ssh -F {ep.config_file} {ep.alias}` to see the full error"


def _last_log_line(log_path: Path) -> str:
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line and not line.lower().startswith("warning: permanently added")]
    return lines[-1] if lines else ""


def connection_error(ep: Endpoint, message: str) -> OperationError:
    message = message or "ssh failed with no message"
    return OperationError(f"cannot reach {ep.label}: {message}", _error_hint(message, ep))


class _LogFile:
    """A scratch file for ssh's own messages (``-E``), so errors are ours to report."""

    def __init__(self) -> None:
        directory = paths.state_dir("ssh", "logs")
        fd, name = tempfile.mkstemp(prefix="ssh-", suffix=".log", dir=directory)
        os.close(fd)
        self.path = Path(name)

    def last_line(self) -> str:
        return _last_log_line(self.path)

    def close(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


@dataclass
class Captured:
    returncode: int
    stdout: str
    stderr: str


def capture(target: Target, command: list[str] | str, *, input: str | None = None,
            timeout: float | None = 120, cd: str = "require", login: bool = True,
            connect_timeout: int = CONNECT_TIMEOUT_S) -> Captured:
    """Run a command and collect its output (for probes and checks, not for users' commands).

    ``cd``: "require" (enter the workdir or fail), "try" (enter it if it exists; the venv and
    envs apply either way) or "skip" (run in the home directory, nothing activated). Raises
    OperationError when the machine cannot be reached; otherwise returns the remote exit code and
    output.
    """
    ensure_connected(target, connect_timeout=connect_timeout,
                     timeout=min(timeout, handshake_timeout()) if timeout else None)
    ep = endpoint(target)
    lines = [] if cd == "skip" else prelude(ep, must_cd=cd == "require", quiet=cd == "try")
    script = "\n".join(lines + [command_text(command)]) + "\n"
    remote = wrap_bash(script, login=login)
    log = _LogFile()
    argv = _ssh_prefix(ep, batch=True, connect_timeout=connect_timeout) + ["-E", str(log.path), ep.alias, remote]
    try:
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                                  stdin=None if input is not None else subprocess.DEVNULL,
                                  errors="replace")
        except subprocess.TimeoutExpired:
            raise OperationError(f"{ep.label} did not answer within {timeout:.0f}s",
                                 _error_hint("timed out", ep)) from None
        except FileNotFoundError:
            raise OperationError("ssh is not installed", "install OpenSSH (the openssh-client package)") from None
        if proc.returncode == SSH_EXIT_ERROR and log.last_line():
            raise connection_error(ep, log.last_line())
        return Captured(proc.returncode, proc.stdout, proc.stderr)
    finally:
        log.close()


def check_reachable(target: Target, timeout: float = 30) -> None:
    """Raise a clear OperationError unless a trivial command runs on the target."""
    result = capture(target, "true", cd="skip", login=False, timeout=timeout)
    if result.returncode != 0:
        ep = endpoint(target)
        raise connection_error(ep, (result.stderr.strip().splitlines() or [""])[-1])


def handshake_timeout() -> float:
    """Seconds a first connection may take, key exchange included (OpenSSH's ConnectTimeout
    covers the TCP connect and the banner, not a server that stalls in the key exchange)."""
    return 2 * CONNECT_TIMEOUT_S + 5


def ensure_connected(target: Target, *, connect_timeout: int = CONNECT_TIMEOUT_S,
                     timeout: float | None = None) -> None:
    """Open the shared master connection within :func:`handshake_timeout` (a no-op when it is
    already up), so a later unbounded call (an interactive shell, a long exec) never hangs on a
    server that accepts and then stalls.

    The master is started by a command of its own whose stdout is /dev/null: a master that
    ``ControlPersist`` backgrounds keeps the stdout it was started with, so one started by a
    call that captures output would hold that pipe open and the capture would never see EOF.
    """
    ep = endpoint(target)
    if _master_alive(ep):
        return
    limit = timeout or handshake_timeout()
    log = _LogFile()
    argv = _ssh_prefix(ep, batch=True, connect_timeout=connect_timeout) + ["-E", str(log.path), ep.alias, "true"]
    try:
        try:
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=limit).returncode
        except subprocess.TimeoutExpired:
            raise OperationError(f"{ep.label} did not answer within {limit:.0f}s",
                                 _error_hint("timed out", ep)) from None
        except FileNotFoundError:
            raise OperationError("ssh is not installed", "install OpenSSH (the openssh-client package)") from None
        if rc != 0:
            raise connection_error(ep, log.last_line() or f"ssh exited {rc}")
    finally:
        log.close()


def run(target: Target, command: list[str] | str, *, tty: bool = False, sync: bool = False,
        stdout: Any = None, forwards: list[tuple[int, int]] | None = None) -> int:
    """Run a command on the target, streaming its output; returns the remote exit code.

    ``command``: a list of several arguments is run verbatim (each quoted); a single string (or
    a one-element list) is a shell command line. ``tty`` allocates a terminal (Ctrl-C then goes
    through it). An empty command with ``tty`` opens an interactive shell in the workdir.
    ``sync`` copies the repo to the workdir first (see :func:`sync_repo`). ``stdout``: where
    the remote stdout goes (default: ours). ``forwards``: (local, remote) ports forwarded over
    this connection (its own, not the shared master, so they end with it).
    """
    ensure_connected(target)
    if sync:
        sync_repo(target)
    ep = endpoint(target)
    log = _LogFile()
    pidfile = None
    if tty:
        script = interactive_script(ep, command or None)
        argv = (_ssh_prefix(ep, batch=False, multiplex=not forwards) + forward_options(forwards or [])
                + ["-E", str(log.path), "-tt", ep.alias, wrap_login(script)])
    else:
        if not command:
            raise UsageError("no command given", "put the command after --, e.g. gpu-lol exec -- nvidia-smi")
        pidfile = f"/tmp/gpu-lol-exec-{os.urandom(8).hex()}.pid"
        script = exec_script(ep, command, pidfile=pidfile)
        argv = _ssh_prefix(ep, batch=True) + ["-E", str(log.path), ep.alias, wrap_login(script)]
    keepalive: list[subprocess.Popen] = []
    started = None
    if pidfile and needs_keepalive(ep.target):
        def started() -> None:
            keepalive.append(_start_keepalive(ep, pidfile))
    try:
        rc = _stream(argv, ep, pidfile=pidfile, own_session=not tty, stdout=stdout, on_started=started)
        if rc == SSH_EXIT_ERROR and log.last_line():
            raise connection_error(ep, log.last_line())
        return rc
    except FileNotFoundError:
        raise OperationError("ssh is not installed", "install OpenSSH (the openssh-client package)") from None
    finally:
        for proc in keepalive:
            _stop(proc)
        log.close()


# ---------------------------------------------------------------------------------------------
# Port forwarding: the portable way to reach a port (no provider port mapping or firewall)


def parse_forward(text: str) -> tuple[int, int]:
    """``8888`` -> (8888, 8888); ``18888:8888`` -> (18888, 8888) as (local, remote)."""
    parts = str(text).strip().split(":")
    try:
        if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
            raise ValueError
        local, remote_port = (int(parts[0]), int(parts[-1]))
    except ValueError:
        raise UsageError(f"'{text}' is not a port", "give PORT or LOCAL:REMOTE, e.g. 8888 or 18888:8888") from None
    for port in (local, remote_port):
        if not 1 <= port <= 65535:
            raise UsageError(f"port {port} is out of range", "ports are 1 to 65535")
    return local, remote_port


def forward_options(forwards: list[tuple[int, int]], *, far_host: str = "localhost") -> list[str]:
    """``-L`` options binding the local end to 127.0.0.1 only; fail at once if a port is taken.

    ``far_host``: where the machine end connects (``localhost`` lets ssh try 127.0.0.1 and ::1,
    for a server bound to either; the notebook passes 127.0.0.1, where it binds Jupyter)."""
    if not forwards:
        return []
    opts = ["-o", "ExitOnForwardFailure=yes"]
    for local, remote_port in forwards:
        opts += ["-L", f"127.0.0.1:{int(local)}:{far_host}:{int(remote_port)}"]
    return opts


# A forward's session may hold a terminal running this: SkyPilot's autostop counts SSH sessions
# with a terminal as activity (sky/skylet/autostop_lib.py: has_active_ssh_sessions), so an open
# notebook keeps its cluster up, like an open `gpu-lol ssh` shell; a tunnel with no session
# (`ssh -N`) would not, and the cluster could stop under a notebook in use.
HOLD_COMMAND = "exec sleep 2147483647"
FORWARD_TIMEOUT_S = 60  # until every local end accepts connections


def forward_argv(target: Target, forwards: list[tuple[int, int]], *, far_host: str = "localhost",
                 hold_terminal: bool = False, log: Path | None = None) -> list[str]:
    """The one ``ssh`` argv of a port forward: a connection of its own (never the shared master,
    whose ``ControlPersist`` would keep the ports open after us), ``ExitOnForwardFailure=yes``,
    the local ends on 127.0.0.1 only. ``hold_terminal``: a session holding a terminal (see
    HOLD_COMMAND) instead of ``-N``. ``log``: where ssh writes its own messages (``-E``)."""
    ep = endpoint(target)
    argv = _ssh_prefix(ep, batch=True, multiplex=False)
    if log is not None:
        argv += ["-E", str(log)]
    argv += forward_options(forwards, far_host=far_host) + ["-o", "ServerAliveInterval=15"]
    argv.append("-tt" if hold_terminal else "-N")
    argv.append(ep.alias)
    if hold_terminal:
        argv.append(HOLD_COMMAND)
    return argv


@dataclass
class Forward:
    """A running port forward (see :func:`open_forward`); ``close`` ends it and its ports."""

    process: subprocess.Popen
    forwards: list[tuple[int, int]]
    log: Path

    @property
    def local_port(self) -> int:
        return self.forwards[0][0]

    def alive(self) -> bool:
        return self.process.poll() is None

    def last_message(self) -> str:
        return _last_log_line(self.log)

    def close(self) -> None:
        _stop(self.process)
        try:
            self.log.unlink()
        except OSError:
            pass


def local_port_taken(port: int) -> bool:
    """Something listens on 127.0.0.1:``port`` already (a connection to it would not be ours)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ssh binds: TIME_WAIT is free
        try:
            sock.bind(("127.0.0.1", int(port)))
        except OSError:
            return True
    return False


def _accepts(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def open_forward(target: Target, forwards: list[tuple[int, int]], *, far_host: str = "localhost",
                 hold_terminal: bool = False, timeout: float = FORWARD_TIMEOUT_S,
                 port_hint: str = "pick another local port: gpu-lol forward LOCAL:REMOTE") -> Forward:
    """Start the forward and return once every local end accepts connections.

    A local port that cannot be bound (``ExitOnForwardFailure``) is ``cannot forward ...`` with
    ``port_hint``; a machine that cannot be reached is the transport's connection error."""
    if not forwards:
        raise UsageError("no port given", "e.g. gpu-lol forward 8888 (or LOCAL:REMOTE)")
    ep = endpoint(target)
    what = ", ".join(f"127.0.0.1:{local} -> {ep.target.name}:{far}" for local, far in forwards)
    taken = [local for local, _ in forwards if local_port_taken(local)]
    if taken:  # checked first: the readiness wait below would connect to that other listener
        raise OperationError(f"cannot forward {what}: 127.0.0.1:{taken[0]} is already in use", port_hint)
    log = _LogFile()
    argv = forward_argv(target, forwards, far_host=far_host, hold_terminal=hold_terminal, log=log.path)
    try:
        # its own session: a Ctrl-C meant for us does not kill it before we stop it cleanly
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except FileNotFoundError:
        log.close()
        raise OperationError("ssh is not installed", "install OpenSSH (the openssh-client package)") from None
    handle = Forward(proc, list(forwards), log.path)
    deadline = time.monotonic() + timeout
    waiting = [local for local, _ in forwards]
    try:
        while waiting:
            if proc.poll() is not None:
                message = handle.last_message() or f"ssh exited with {proc.returncode}"
                low = message.lower()
                if "forward" in low or "bind" in low or "address already in use" in low:
                    raise OperationError(f"cannot forward {what}: {message}", port_hint)
                raise connection_error(ep, message)
            if time.monotonic() > deadline:
                raise OperationError(f"the port forward to {ep.label} did not come up within {timeout:.0f}s",
                                     _error_hint("timed out", ep))
            if _accepts(waiting[0]):
                waiting.pop(0)
            else:
                time.sleep(0.1)
    except BaseException:
        handle.close()
        raise
    return handle


def forward(target: Target, forwards: list[tuple[int, int]], *, announce: Any = None) -> int:
    """Forward the ports until Ctrl-C (exit 0); a connection or bind failure is an error."""
    if announce is not None:
        for local, remote_port in forwards:
            announce(f"forwarding http://127.0.0.1:{local} -> {target.name}:{remote_port} (Ctrl-C to stop)")
    try:
        handle = open_forward(target, forwards)
    except KeyboardInterrupt:
        return 0
    try:
        try:
            rc = handle.process.wait()
        except KeyboardInterrupt:
            return 0
        if rc != 0:
            raise connection_error(endpoint(target), handle.last_message() or f"ssh exited with {rc}")
        return 0
    finally:
        handle.close()


# ---------------------------------------------------------------------------------------------
# Keeping a cluster busy while an inline command runs

# SkyPilot's autostop (0.14, wait_for jobs_and_ssh) counts a cluster busy only while a SkyPilot
# job runs or a process on a pty descended from sshd exists (sky/skylet/autostop_lib.py:
# has_active_ssh_sessions, checked each minute by sky/skylet/events.py: StopEvent). An `exec`
# without a terminal holds no pty, so a long command would count as idle and, with `down: true`
# (RunPod, Lambda), the machine and its disk would go mid-run. While such a command runs,
# a second session over the same master connection holds a pty: it waits for the command's
# pidfile, then sleeps while that process lives, so it never outlives the command (and ends
# with the local ssh when that goes: the pty hangs up).
KEEPALIVE_POLL_S = 5
_PIDFILE_WAIT_TICKS = 240  # x 0.25 s: how long the keep-alive waits for the command to start


def needs_keepalive(target: Target) -> bool:
    """Only SkyPilot clusters have an autostop to hold off (a host has none);
    ``GPU_LOL_NO_KEEPALIVE=1`` turns it off."""
    return target.kind == KIND_SKY and os.environ.get("GPU_LOL_NO_KEEPALIVE", "") in ("", "0")


def keepalive_script(pidfile: str) -> str:
    pf = shlex.quote(pidfile)
    return (f"i=0; while [ ! -s {pf} ] && [ $i -lt {_PIDFILE_WAIT_TICKS} ]; do sleep 0.25; i=$((i+1)); done\n"
            f"pid=$(cat {pf} 2>/dev/null) || exit 0\n"
            f"while kill -0 \"$pid\" 2>/dev/null; do sleep {KEEPALIVE_POLL_S}; done\n")


def _start_keepalive(ep: Endpoint, pidfile: str) -> subprocess.Popen:
    # ControlMaster=no (the first -o wins): use the master the command's ssh opened, never
    # become the master from a process that is killed at the end.
    argv = (["ssh", "-o", "ControlMaster=no"] + _ssh_prefix(ep, batch=True)[1:]
            + ["-tt", ep.alias, "exec bash -c " + shlex.quote(keepalive_script(pidfile))])
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """End a helper ssh (keep-alive session, port forward): TERM, then KILL after 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Interrupted(Exception):
    pass


def _stream(argv: list[str], ep: Endpoint, *, pidfile: str | None, own_session: bool,
            stdout: Any = None, on_started: Any = None) -> int:
    """Run ssh with our stdio; forward interrupts to the remote process group.
    ``on_started`` is called once ssh runs (the keep-alive session starts there)."""
    # Without a pty, ssh runs in its own session so a terminal Ctrl-C reaches only us: we pass
    # it on to the remote group and keep streaming until the remote command has exited.
    out_arg, out_pump = _output_target(sys.stdout if stdout is None else stdout)
    err_arg, err_pump = _output_target(sys.stderr)
    proc = subprocess.Popen(argv, start_new_session=own_session, stdout=out_arg, stderr=err_arg)
    pumps = [_start_pump(pipe, stream) for pipe, stream in ((proc.stdout, out_pump), (proc.stderr, err_pump))
             if stream is not None]
    restore = _install_signal_handlers() if own_session else None
    interrupts = 0
    try:
        if on_started is not None:
            on_started()
        while True:
            try:
                rc = proc.wait()
                for pump in pumps:
                    pump.join()
                return rc
            except (KeyboardInterrupt, _Interrupted):
                interrupts += 1
                if not own_session:
                    # A pty: ssh got the signal (or the ^C travelled through the terminal).
                    if interrupts >= 3:
                        proc.kill()
                    continue
                # Still connecting (no master connection yet): nothing runs remotely; stop now.
                if interrupts >= 3 or pidfile is None or not _master_alive(ep):
                    return _stop_local(proc)
                sig = "INT" if interrupts == 1 else "TERM"
                sys.stderr.write(f"\ngpu-lol: sending SIG{sig} to the command on {ep.target.name}"
                                 f"{' (again to force-stop the local ssh)' if interrupts == 2 else ''}\n")
                sys.stderr.flush()
                try:
                    _signal_remote(ep, pidfile, sig)
                except (KeyboardInterrupt, _Interrupted):
                    return _stop_local(proc)
    finally:
        if restore:
            restore()
        if proc.poll() is None:  # never leave a detached ssh behind
            proc.kill()
            proc.wait()


def _stop_local(proc: subprocess.Popen) -> int:
    proc.kill()
    proc.wait()
    return 130


def _master_alive(ep: Endpoint) -> bool:
    """Whether the shared master connection to the machine is up (a local socket check)."""
    if control_dir() is None:
        return True  # no multiplexing: a new connection will have to do
    argv = _ssh_prefix(ep, batch=True) + ["-O", "check", ep.alias]
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=5).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def _output_target(stream: Any) -> tuple[Any, Any]:
    """(what Popen gets, stream to copy into): a real file descriptor is handed to ssh as is;
    a Python-level stream without one (gpu-lol used as a library, in a notebook, under a test
    runner) gets a pipe whose output is copied into it."""
    if isinstance(stream, int):
        return stream, None
    try:
        stream.flush()
        return stream.fileno(), None
    except (AttributeError, OSError, ValueError):
        return subprocess.PIPE, stream


def _start_pump(pipe, stream):
    import codecs
    import threading

    def pump() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = pipe.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            stream.write(decoder.decode(chunk))
            stream.flush()
        tail = decoder.decode(b"", final=True)
        if tail:
            stream.write(tail)
        pipe.close()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def _install_signal_handlers():
    if not _in_main_thread():
        return None

    def raise_interrupt(signum, frame):  # noqa: ARG001
        raise _Interrupted()

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, raise_interrupt)
        except (ValueError, OSError):
            pass

    def restore():
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):
                pass

    return restore


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _signal_remote(ep: Endpoint, pidfile: str, sig: str) -> None:
    pf = shlex.quote(pidfile)
    script = (f"pid=$(cat {pf} 2>/dev/null) || exit 0\n"
              f"kill -{sig} -- -\"$pid\" 2>/dev/null || kill -{sig} \"$pid\" 2>/dev/null || true\n")
    argv = _ssh_prefix(ep, batch=True, connect_timeout=5) + [ep.alias, "exec bash -c " + shlex.quote(script)]
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
    except (subprocess.TimeoutExpired, OSError):
        pass


# ---------------------------------------------------------------------------------------------
# Sync and connection lifetime


def rsync_destination(ep: Endpoint) -> str:
    """``host:path`` for rsync (rsync adds the host to our ssh argv; the path is relative to
    the remote home when the workdir starts with ``~/``)."""
    path = ep.workdir
    if path.startswith("~/"):
        path = path[2:]
    host = ep.alias
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{path.rstrip('/')}/"

def rsync_argv(sync_plan: "SyncPlan", destination: str, ssh_command: list[str],
               files_from: Path) -> list[str]:
    """rsync argv that copies exactly ``sync_plan.files`` to ``destination`` (``host:path``).

    ``files_from`` is a scratch file path this function fills with the list (NUL-separated so
    any file name is safe). ``ssh_command`` is the ssh argv rsync uses as its remote shell.
    """
    import shlex

    from gpu_lol.machine.rsync_shell import clean_ssh_command, new_marker, rsync_path

    files_from.write_bytes(b"".join(rel.encode() + b"\0" for rel, _ in sync_plan.files))
    # The remote login shell may print text before rsync starts (a chatty .bashrc): the wrapper
    # drops everything before the marker the remote command prints (see gpu_lol.machine.rsync_shell).
    marker = new_marker()
    return [
        "rsync", "-a", "--no-owner", "--no-group", "--from0", f"--files-from={files_from}",
        "-e", " ".join(shlex.quote(part) for part in clean_ssh_command(ssh_command, marker)),
        f"--rsync-path={rsync_path(marker)}",
        str(sync_plan.root) + "/", destination,
    ]


def sync_repo(target: Target, repo: Path | None = None, *, quiet: bool = False):
    """rsync the repo (the files SkyPilot would send; see gpu_lol.launch.sync) to the workdir."""
    from gpu_lol.console import info, progress, warn
    from gpu_lol.launch import sync

    repo = Path(repo or target.repo)
    if not repo.is_dir():
        raise OperationError(f"the repo {repo} of '{target.name}' does not exist here",
                             "run from the repo, or launch again from where it lives now")
    ep = endpoint(target)
    from gpu_lol.spec import EnvironmentSpec

    try:
        spec = EnvironmentSpec.from_dict(target.spec) if target.spec else None
    except Exception:  # noqa: BLE001 - an old record: the repo's own files decide about .git
        spec = None
    plan = sync.plan(repo, spec)
    for message in plan.warnings:
        warn(message)
    mk = capture(target, f"mkdir -p -- {shell_path(ep.workdir)}", cd="skip", login=False)
    if mk.returncode != 0:
        raise OperationError(f"cannot create {ep.workdir} on {ep.label}: "
                             f"{(mk.stderr.strip().splitlines() or ['?'])[-1]}",
                             "pick another --workdir")
    scratch = paths.state_dir("ssh", "logs")
    fd, files_from = tempfile.mkstemp(prefix="rsync-", suffix=".list", dir=scratch)
    os.close(fd)
    try:
        argv = rsync_argv(plan, rsync_destination(ep), _ssh_prefix(ep, batch=True), Path(files_from))
        started = time.monotonic()
        try:
            with progress(f"syncing {repo} to {ep.target.name}:{ep.workdir}: {plan.summary()}", quiet=quiet or None):
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      errors="replace")
        except FileNotFoundError:
            raise OperationError("rsync is not installed here", "install rsync") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            hint = "install rsync on the machine" if "command not found" in proc.stderr else \
                f"check that {ep.workdir} is writable on {ep.target.name}"
            raise OperationError(f"rsync to {ep.label} failed: {last}", hint)
        if not quiet:
            info(f"synced {plan.summary()} to {ep.target.name}:{ep.workdir} in {time.monotonic() - started:.1f}s")
    finally:
        os.unlink(files_from)
    return plan


def close(target: Target) -> None:
    """Stop the shared master connection to the target, if one is running."""
    try:
        ep = endpoint(target)
    except OperationError:
        return
    argv = _ssh_prefix(ep, batch=True) + ["-O", "exit", ep.alias]
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (subprocess.TimeoutExpired, OSError):
        pass


# ---------------------------------------------------------------------------------------------
# Logs


def setup_log_path(target: Target) -> str:
    """Where a host target's setup log is (on the host)."""
    return host_meta_dir(workdir_of(target)) + "/setup.log"


def stream_logs(target: Target, *, follow: bool = False, tail: int = 0, provision: bool = False,
                job_id: int | None = None) -> int:
    """Print the target's logs: a host's setup log (over SSH); a cluster's latest job log
    (setup and run output, through SkyPilot) or with ``provision`` its provisioning log."""
    if target.kind == KIND_HOST:
        log = shell_path(setup_log_path(target))
        count = f"-n {int(tail)}" if tail and tail > 0 else "-n +1"
        follow_flag = " -F" if follow else ""
        script = (f"if [ ! -f {log} ]; then echo {shlex.quote(f'gpu-lol: no setup log on {target.name} yet')} >&2; "
                  f"exit 1; fi\ntail {count}{follow_flag} {log}")
        return run(target, script)
    import sky  # only here: a cluster's logs go through SkyPilot's API server

    from gpu_lol.launch import skypilot

    if provision:
        return int(skypilot.call(sky.tail_provision_logs, target.name, follow=follow, tail=tail) or 0)
    return int(skypilot.call(sky.tail_logs, target.name, job_id, follow, tail=tail) or 0)
