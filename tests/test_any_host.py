"""`up --host` on awkward machines, against real OpenSSH servers on 127.0.0.1.

Each "account" is an sshd (tests/sshd.py) whose sessions get a HOME of their own (``SetEnv``)
with a ``.bashrc`` that prints a banner (bash reads it for every command sshd starts) and a PATH
that starts with a fake pyenv shim: a ``python3.X`` that exits 127 with pyenv's own message, as
on a box where that version is not installed. ``ForceCommand`` runs the client's command with
fish or zsh (exactly what sshd does with a user whose login shell is fish: ``SHELL -c CMD``), or
as the unprivileged user ``nobody`` without sudo (``setpriv``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_lol.errors import OperationError
from gpu_lol.launch import state
from gpu_lol.machine import hosts, probe_facts, remote, transfer
from gpu_lol.spec import EnvironmentSpec
from sshd import control_cleanup, remote_tmp, start_sshd, stop_sshd, unavailable_reason  # noqa: F401

pytestmark = pytest.mark.slow


def _system_python() -> str:
    out = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True)
    return out.stdout.strip()


SYSTEM_PY = _system_python() if Path("/usr/bin/python3").exists() else ""
# A version the fake shim pretends to be (never the real interpreter's own).
SHIM_VERSION = "3.12" if SYSTEM_PY != "3.12" else "3.13"

SHIM = f"""#!/bin/sh
echo "pyenv: python{SHIM_VERSION}: command not found" >&2
echo >&2
echo "The \\`python{SHIM_VERSION}' command exists in these Python versions:" >&2
echo "  {SHIM_VERSION}.1" >&2
exit 127
"""


class Account:
    def __init__(self, server, home: Path, name: str):
        self.server, self.home, self.name = server, home, name


def _start_account(tmp_path_factory, kind: str) -> Account:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no loopback sshd: {reason}")
    if not SYSTEM_PY:
        pytest.skip("no /usr/bin/python3")
    if kind == "nobody":
        # pytest's base directory is private to root: nobody's home must be reachable.
        import tempfile

        home = Path(tempfile.mkdtemp(prefix="gpu-lol-nobody-"))
        os.chmod(home, 0o755)
    else:
        home = tmp_path_factory.mktemp(f"home-{kind}")
    shims = home / "shims"
    shims.mkdir()
    (shims / f"python{SHIM_VERSION}").write_text(SHIM)
    (shims / f"python{SHIM_VERSION}").chmod(0o755)
    (home / ".bashrc").write_text('echo "Welcome to the lab box (conda base activated)"\n')
    # As pyenv's installer does: its shims go first on PATH in the login profile.
    (home / ".profile").write_text(f'export PATH="{shims}:$PATH"\n. ~/.bashrc\n')
    path = "/usr/local/bin:/usr/bin:/bin"
    config = [f"SetEnv HOME={home} PATH={path}"]
    if kind in ("fish", "zsh"):
        exe = shutil.which(kind)
        if exe is None:
            pytest.skip(f"{kind} is not installed (apt-get install {kind})")
        config.append(f'ForceCommand exec {exe} -c "$SSH_ORIGINAL_COMMAND"')
    elif kind == "nobody":
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv is not installed (util-linux)")
        os.chown(home, 65534, 65534)
        for p in home.rglob("*"):
            os.chown(p, 65534, 65534)
        config.append('ForceCommand exec setpriv --reuid=65534 --regid=65534 --clear-groups '
                      'bash -c "$SSH_ORIGINAL_COMMAND"')
    server = start_sshd(tmp_path_factory.mktemp(f"sshd-{kind}"), config)
    return Account(server, home, kind)


@pytest.fixture(scope="module", params=["bash", "fish", "zsh", "nobody"])
def account(request, tmp_path_factory):
    acct = _start_account(tmp_path_factory, request.param)
    try:
        yield acct
    finally:
        stop_sshd(acct.server.process)
        if request.param == "nobody":
            shutil.rmtree(acct.home, ignore_errors=True)


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    (path / "train.py").write_text("print('hi')\n")
    return path


def _workdir(account: Account, remote_tmp: Path) -> str:  # noqa: F811
    workdir = remote_tmp / f"w-{account.name}"
    if account.name == "nobody":
        os.chmod(remote_tmp, 0o777)
    return str(workdir)


def test_up_host_on_an_awkward_account(account, remote_tmp, repo, capsys):  # noqa: F811
    """A shim for the asked-for Python is skipped with a warning naming pyenv's message; the
    real python3 is used; a chatty .bashrc breaks neither rsync nor the checks; the login shell
    may be fish or zsh; the user may be unprivileged."""
    server = account.server
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0, python_version=SHIM_VERSION,
                           base_image="", setup_commands=["python -c 'import sys; print(\"venv at\", sys.prefix)'"])
    name = f"acct-{account.name}"
    target = hosts.up_host(repo, spec, server.spec, identity=str(server.identity), name=name,
                           workdir=_workdir(account, remote_tmp), yes=True)
    try:
        err = capsys.readouterr().err
        assert f"pyenv: python{SHIM_VERSION}: command not found" in err
        assert f"python{SHIM_VERSION} on {server.spec} does not run" in err and "using python3" in err
        assert "ensurepip is missing" not in err
        workdir = Path(target.extra["workdir"])
        assert (workdir / "train.py").read_text() == "print('hi')\n"
        assert (workdir / ".gpu-lol" / "venv" / "bin" / "python").exists()
        assert "venv at" in (workdir / ".gpu-lol" / "setup.log").read_text()
        # exec through the login shell: quotes and backslashes arrive intact (fish unescapes
        # backslashes in single quotes, so gpu-lol must not depend on that).
        out = remote.capture(target, ["printf", "%s\\n", "a\\\\b", "it's $HOME"])
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[-2:] == ["a\\\\b", "it's $HOME"]
        # pull and push over the same account.
        (workdir / "out.txt").write_text("result\n")
        transfer.pull(target, "out.txt", str(repo / "back.txt"), progress=False)
        assert (repo / "back.txt").read_text() == "result\n"
        # The probe's JSON line is found after the banner.
        report = probe_facts.run_probe(target, workdir=str(workdir))
        assert isinstance(report, dict) and report
    finally:
        remote.close(target)
        state.delete(name)


def test_conda_base_environment_is_used(tmp_path_factory, remote_tmp, repo, capsys):  # noqa: F811
    """~/miniconda3 exists but a login shell does not activate it (conda's block in .bashrc is
    after the non-interactive return): gpu-lol still finds its Python and says so."""
    acct = _start_account(tmp_path_factory, "conda")
    conda_bin = acct.home / "miniconda3" / "bin"
    conda_bin.mkdir(parents=True)
    (conda_bin / "python3").symlink_to("/usr/bin/python3")
    (acct.home / ".bashrc").write_text('case $- in *i*) ;; *) return;; esac\n'
                                       f'export PATH="{conda_bin}:$PATH"\n')
    server = acct.server
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0, base_image="")
    try:
        target = hosts.up_host(repo, spec, server.spec, identity=str(server.identity), name="conda",
                               workdir=str(remote_tmp / "w"), yes=True)
        err = capsys.readouterr().err
        assert f"note: using {conda_bin}/python3" in err
        cfg = (remote_tmp / "w" / ".gpu-lol" / "venv" / "pyvenv.cfg").read_text()
        assert f"home = {conda_bin}" in cfg
        remote.close(target)
    finally:
        stop_sshd(server.process)


def test_unprivileged_account_is_told_it_has_no_sudo(account, remote_tmp):  # noqa: F811
    if account.name != "nobody":
        pytest.skip("only the unprivileged account")
    server = account.server
    from gpu_lol.launch.state import Target

    target = Target(name="nob", kind="host", repo="/", extra={
        "host": server.host, "user": server.user, "port": server.port, "identity": str(server.identity),
        "workdir": _workdir(account, remote_tmp), "venv": None})
    try:
        result = remote.capture(target, hosts._preflight_script(target.extra["workdir"], ["python3"], False),
                                cd="skip")
        pre = hosts._parse_preflight(result.stdout)
        assert pre.uid == 65534 and not pre.sudo and pre.python == "python3"
        assert "ask the machine's admin" in hosts._install_hint(pre, "rsync")
    finally:
        remote.close(target)


def test_failed_setup_hint_repeats_every_flag(account, remote_tmp, repo, tmp_path, monkeypatch):  # noqa: F811
    if account.name != "bash":
        pytest.skip("one account is enough")
    server = account.server
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0, setup_commands=["exit 3"])
    monkeypatch.chdir(tmp_path)
    workdir = _workdir(account, remote_tmp)
    with pytest.raises(OperationError) as err:
        hosts.up_host(repo, spec, server.spec, identity=str(server.identity), name="failing",
                      workdir=workdir, yes=True)
    hint = err.value.hint
    assert f"--identity {server.identity}" in hint and f"--workdir {workdir}" in hint
    assert f"gpu-lol up {repo} --host {server.spec} --name failing" in hint
    target = state.load("failing")
    remote.close(target)
    state.delete("failing")


# ---------------------------------------------------------------------------------------------
# No server needed


def test_image_default_python_is_not_asked_for():
    image = "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"  # ships Python 3.12
    assert hosts.requested_python(EnvironmentSpec(base_image=image, python_version="3.12")) is None
    assert hosts.requested_python(EnvironmentSpec(base_image=image, python_version="3.10")) == "3.10"
    assert hosts.requested_python(EnvironmentSpec(base_image="python:3.11-slim", python_version="3.11")) is None
    assert hosts.requested_python(EnvironmentSpec(base_image="", python_version="3.9.18")) == "3.9"
    plain = hosts.python_candidates_for(None)
    assert plain.index("python3") == len(hosts.CONDA_PYTHONS) and plain[-1] == "/usr/bin/python3"
    asked = hosts.python_candidates_for("3.10")
    assert asked[0] == "python3.10" and asked.index("python3") < asked.index("python3.11")


def test_preflight_reports_broken_interpreters():
    pre = hosts._parse_preflight("python_broken=python3.12\tpyenv: python3.12: command not found\n"
                                 "python=python3\npython_version=3.11.2\npython_ensurepip=no\nuid=1000\n")
    assert pre.python_broken == [("python3.12", "pyenv: python3.12: command not found")]
    assert pre.python == "python3" and not pre.python_ensurepip and pre.uid == 1000 and not pre.sudo


def test_setup_without_ensurepip_says_so_and_never_guesses():
    from gpu_lol.launch.state import Target

    target = Target(name="box", kind="host", repo="/r", extra={"host": "h", "workdir": "~/w", "venv": "~/w/.gpu-lol/venv"})
    script, _ = hosts.render_setup(target, EnvironmentSpec(), "python3", ensurepip=False)
    assert "--without-pip" in script and "has no ensurepip" in script
    script, _ = hosts.render_setup(target, EnvironmentSpec(), "python3")
    assert "--without-pip" not in script and "ensurepip" not in script


def test_retry_command_quotes_and_keeps_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = hosts.retry_command(tmp_path, "me@box:2222", name="box", identity="/keys/my key", workdir="~/w")
    assert text == "gpu-lol up --host me@box:2222 --name box --identity '/keys/my key' --workdir '~/w'"
    assert sys.executable  # the interpreter running the tests is irrelevant to the command


def test_probe_interpreter_skips_a_broken_shim(tmp_path):
    """The probe's launcher line, run by a real bash: a python3 shim that fails is passed over."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3").write_text('#!/bin/sh\necho "pyenv: python3: command not found" >&2\nexit 127\n')
    (shims / "python3").chmod(0o755)
    (shims / "python").symlink_to(shims / "python3")
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no /usr/bin/python3")
    out = subprocess.run(["bash", "-c", probe_facts.REMOTE_PYTHON], input="import sys; print('ran', sys.executable)\n",
                         capture_output=True, text=True, env={"PATH": f"{shims}:/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ran ") and str(shims) not in out.stdout
