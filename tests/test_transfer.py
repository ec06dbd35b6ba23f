"""``pull``/``push`` and ``down``'s new-files check against a real OpenSSH server on 127.0.0.1
and the real rsync (tests/sshd.py). The "remote" workdir is a scratch directory on this machine."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from gpu_lol.errors import OperationError, UsageError
from gpu_lol.launch import state
from gpu_lol.launch.state import Target
from gpu_lol.machine import remote, rsync_shell, transfer
from sshd import control_cleanup, read_until, remote_tmp, sshd_server, start_sshd, stop_sshd, unavailable_reason  # noqa: F401

pytestmark = pytest.mark.slow

ODD = "it's $HOME; `x` & y.txt"


def make_target(server, workdir: Path, repo: Path, name: str = "box", created_at: float | None = None) -> Target:
    target = Target(name=name, kind="host", repo=str(repo), spec={},
                    created_at=time.time() if created_at is None else created_at,
                    extra={"host": server.host, "user": server.user, "port": server.port,
                           "identity": str(server.identity), "workdir": str(workdir), "venv": None})
    state.save(target)
    return target


@pytest.fixture
def setup(sshd_server, remote_tmp, tmp_path):  # noqa: F811
    workdir = remote_tmp / "work dir"
    (workdir / "outputs" / "run 1").mkdir(parents=True)
    (workdir / "outputs" / "run 1" / "ckpt.pt").write_bytes(os.urandom(300_000))
    (workdir / "outputs" / ODD).write_text("odd\n")
    (workdir / "outputs" / "metrics.json").write_text('{"loss": 0.1}\n')
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("print('hi')\n")
    target = make_target(sshd_server, workdir, repo)
    yield target, workdir, repo
    remote.close(target)


def same_tree(a: Path, b: Path) -> bool:
    def listing(root: Path):
        return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else None)
                      for p in root.rglob("*"))
    return listing(a) == listing(b)


# ---------------------------------------------------------------------------------------------
# Paths (no server)


@pytest.mark.parametrize("workdir,path,expected", [
    ("~/gpu-lol/box", "outputs", "gpu-lol/box/outputs"),
    ("~/gpu-lol/box", "outputs/", "gpu-lol/box/outputs/"),
    ("~/gpu-lol/box", ".", "gpu-lol/box"),
    ("~/sky_workdir", "~/data/x", "data/x"),
    ("~/sky_workdir", "~", "."),
    ("/data/me/w", "/scratch/out", "/scratch/out"),
    ("/data/me/w", "a/../b", "/data/me/w/b"),
    ("/data/me/w", "-rf", "/data/me/w/-rf"),
])
def test_remote_paths(workdir, path, expected):
    assert transfer.remote_rsync_path(workdir, path) == expected


def test_remote_path_rejects_other_homes_and_newlines():
    with pytest.raises(UsageError):
        transfer.remote_rsync_path("~/w", "~bob/x")
    with pytest.raises(UsageError):
        transfer.remote_rsync_path("~/w", "a\nb")


def test_default_places_mirror_the_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    assert transfer.default_local_for_pull("outputs", repo, tmp_path) == repo
    assert transfer.default_local_for_pull("outputs/run1/ckpt.pt", repo, tmp_path) == repo / "outputs/run1"
    assert transfer.default_local_for_pull("/scratch/x", repo, tmp_path) == tmp_path
    assert transfer.default_remote_for_push(repo / "data" / "train.csv", repo) == "data/"
    assert transfer.default_remote_for_push(repo / "weights.pt", repo) == "."
    assert transfer.default_remote_for_push(tmp_path / "elsewhere.bin", repo) == "."


def test_clean_ssh_wrapper_drops_text_before_the_marker(tmp_path):
    """The wrapper rsync runs as its remote shell, with `sh` standing in for ssh."""
    import sys

    script = "printf 'Welcome!\\nconda: base\\n'; echo M; printf 'payload\\n'"
    argv = rsync_shell.clean_ssh_command(["sh", "-c", script], "M")
    assert argv[:3] == [sys.executable, "-m", "gpu_lol.machine.rsync_shell"]
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    assert out == b"payload\n"


# ---------------------------------------------------------------------------------------------
# pull


def test_pull_defaults_to_the_same_place_in_the_repo(setup):
    target, workdir, repo = setup
    result = transfer.pull(target, "outputs", None, progress=False)
    assert same_tree(workdir / "outputs", repo / "outputs")
    assert (repo / "outputs" / ODD).read_text() == "odd\n"
    assert len(result.files) == 3 and all(i.is_new for i in result.files)
    assert not (repo / "outputs" / transfer.PARTIAL_DIR).exists()


def test_pull_one_file_and_contents_of_a_directory(setup, tmp_path):
    target, workdir, _ = setup
    dest = tmp_path / "here"
    dest.mkdir()
    transfer.pull(target, "outputs/run 1/ckpt.pt", str(dest), progress=False)
    assert (dest / "ckpt.pt").read_bytes() == (workdir / "outputs/run 1/ckpt.pt").read_bytes()
    flat = tmp_path / "flat"
    transfer.pull(target, "outputs/", str(flat), progress=False)
    assert (flat / "metrics.json").exists() and (flat / "run 1" / "ckpt.pt").exists()


def test_pull_absolute_and_home_paths(setup, tmp_path, remote_tmp):  # noqa: F811
    target, _, _ = setup
    (remote_tmp / "abs.txt").write_text("abs\n")
    transfer.pull(target, str(remote_tmp / "abs.txt"), str(tmp_path / "abs.txt"), progress=False)
    assert (tmp_path / "abs.txt").read_text() == "abs\n"


def test_dry_run_copies_nothing(setup, capsys):
    target, _, repo = setup
    result = transfer.pull(target, "outputs", None, dry_run=True)
    assert not (repo / "outputs").exists()
    err = capsys.readouterr().err
    assert "dry run: nothing copied" in err and "outputs/metrics.json" in err
    assert len(result.files) == 3


def test_missing_remote_path_names_the_workdir(setup):
    target, workdir, _ = setup
    with pytest.raises(OperationError) as err:
        transfer.pull(target, "nope/ckpt.pt", None)
    assert "does not exist on box" in err.value.message
    assert str(workdir) in err.value.hint


def test_pull_refuses_a_symlinked_destination(setup, tmp_path):
    target, _, repo = setup
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "outputs").symlink_to(elsewhere)
    with pytest.raises(UsageError) as err:
        transfer.pull(target, "outputs", None)
    assert "is a symlink" in err.value.message and str(elsewhere) in err.value.message
    with pytest.raises(UsageError):
        transfer.pull(target, "outputs/", str(repo / "outputs"))
    assert list(elsewhere.iterdir()) == []


def test_links_inside_the_tree_are_replaced_not_followed(setup, tmp_path, capsys):
    target, workdir, repo = setup
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (repo / "outputs").mkdir()
    (repo / "outputs" / "metrics.json").symlink_to(victim)
    transfer.pull(target, "outputs", None, force=True, progress=False)
    assert victim.read_text() == "keep me\n"
    assert not (repo / "outputs" / "metrics.json").is_symlink()
    assert (repo / "outputs" / "metrics.json").read_text() == '{"loss": 0.1}\n'
    assert "replaces the link" in capsys.readouterr().err


def test_newer_local_files_are_not_overwritten_without_force(setup):
    target, workdir, repo = setup
    transfer.pull(target, "outputs", None, progress=False)
    mine = repo / "outputs" / "metrics.json"
    mine.write_text('{"loss": "my edit"}\n')
    future = time.time() + 3600
    os.utime(mine, (future, future))
    with pytest.raises(UsageError, match="newer files"):
        transfer.pull(target, "outputs", None)
    assert "my edit" in mine.read_text()
    # An older local copy is simply updated (the remote result is the fresh one).
    os.utime(mine, (1_000_000, 1_000_000))
    transfer.pull(target, "outputs", None, progress=False)
    assert mine.read_text() == '{"loss": 0.1}\n'
    mine.write_text("edit again\n")
    os.utime(mine, (future, future))
    transfer.pull(target, "outputs", None, force=True, progress=False)
    assert mine.read_text() == '{"loss": 0.1}\n'


def test_interrupted_pull_resumes_from_the_partial_dir(setup):
    """rsync keeps an interrupted file in .gpu-lol-partial/ (never under its real name); the
    next pull uses and removes it."""
    target, workdir, repo = setup
    data = (workdir / "outputs/run 1/ckpt.pt").read_bytes()
    dest = repo / "outputs" / "run 1"
    (dest / transfer.PARTIAL_DIR).mkdir(parents=True)
    (dest / transfer.PARTIAL_DIR / "ckpt.pt").write_bytes(data[: len(data) // 2])
    transfer.pull(target, "outputs", None, progress=False)
    assert (dest / "ckpt.pt").read_bytes() == data
    assert not (dest / transfer.PARTIAL_DIR).exists()


# ---------------------------------------------------------------------------------------------
# push


def test_push_goes_to_the_same_place_in_the_workdir(setup):
    target, workdir, repo = setup
    (repo / "data" / "deep").mkdir(parents=True)
    (repo / "data" / "deep" / ODD).write_text("x\n")
    transfer.push(target, str(repo / "data" / "deep" / ODD), None, progress=False)
    assert (workdir / "data" / "deep" / ODD).read_text() == "x\n"
    transfer.push(target, str(repo / "data"), None, progress=False)
    assert (workdir / "data" / "deep" / ODD).exists()


def test_push_to_a_new_remote_directory_and_dry_run(setup, tmp_path):
    target, workdir, _ = setup
    src = tmp_path / "weights"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a" * 1000)
    result = transfer.push(target, str(src), "new/place/", dry_run=True)
    assert [i.name for i in result.files] == ["weights/a.bin"]
    assert not (workdir / "new").exists()
    transfer.push(target, str(src), "new/place/", progress=False)
    assert (workdir / "new" / "place" / "weights" / "a.bin").read_bytes() == b"a" * 1000


def test_push_does_not_overwrite_a_newer_remote_file(setup, tmp_path):
    target, workdir, _ = setup
    local = tmp_path / "metrics.json"
    local.write_text("old local\n")
    os.utime(local, (1_000_000, 1_000_000))
    with pytest.raises(UsageError, match="newer files"):
        transfer.push(target, str(local), "outputs/")
    assert (workdir / "outputs" / "metrics.json").read_text() == '{"loss": 0.1}\n'


def test_push_missing_local_path(setup):
    target, _, _ = setup
    with pytest.raises(UsageError, match="does not exist here"):
        transfer.push(target, "/nonexistent/x", None)


# ---------------------------------------------------------------------------------------------
# A login shell that prints text


@pytest.fixture(scope="module")
def noisy_server(tmp_path_factory):
    """An sshd whose account's ~/.bashrc prints a banner to stdout (bash reads it for every
    command sshd starts), the classic way to break rsync ("is your shell clean?")."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no loopback sshd: {reason}")
    home = tmp_path_factory.mktemp("noisyhome")
    (home / ".bashrc").write_text('echo "Welcome to the lab box! conda base activated"\n')
    (home / ".profile").write_text(". ~/.bashrc\n")
    server = start_sshd(tmp_path_factory.mktemp("sshd-noisy"), [f"SetEnv HOME={home}"])
    try:
        yield server
    finally:
        stop_sshd(server.process)


def test_pull_and_push_survive_a_noisy_bashrc(noisy_server, remote_tmp, tmp_path):  # noqa: F811
    workdir = remote_tmp / "w"
    (workdir / "outputs").mkdir(parents=True)
    (workdir / "outputs" / "r.txt").write_text("result\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    target = make_target(noisy_server, workdir, repo, name="noisy")
    try:
        # Plain rsync over the same ssh breaks: the banner lands in its protocol stream.
        plain = subprocess.run(["rsync", "-a", "-e", " ".join(remote.ssh_command_for_rsync(target)),
                                f"127.0.0.1:{workdir}/outputs", str(tmp_path / "plain")],
                               capture_output=True, text=True)
        assert plain.returncode != 0
        transfer.pull(target, "outputs", None, progress=False)
        assert (repo / "outputs" / "r.txt").read_text() == "result\n"
        (repo / "up.txt").write_text("up\n")
        transfer.push(target, str(repo / "up.txt"), None, progress=False)
        assert (workdir / "up.txt").read_text() == "up\n"
    finally:
        remote.close(target)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_pull_and_push(run_cli, setup, tmp_path):
    target, workdir, repo = setup
    r = run_cli("pull", "box", "outputs/metrics.json", str(tmp_path))
    assert r.code == 0, r
    assert (tmp_path / "metrics.json").exists()
    assert "pulled 1 file(s)" in r.err
    # Without NAME: the target launched from the current repo.
    r = run_cli("pull", "outputs", "--no-progress", cwd=repo)
    assert r.code == 0, r
    assert (repo / "outputs" / "run 1" / "ckpt.pt").exists()
    r = run_cli("push", "train.py", "-n", cwd=repo)
    assert r.code == 0 and "would push 1 file(s)" in r.err, r
    assert not (workdir / "train.py").exists()
    r = run_cli("push", "train.py", cwd=repo)
    assert r.code == 0 and (workdir / "train.py").exists(), r


def test_cli_pull_usage_errors(run_cli, setup):
    _, _, repo = setup
    r = run_cli("pull", cwd=repo)
    assert r.code == 2 and "needs a REMOTE path" in r.err
    r = run_cli("pull", "a", "b", "c", "d", cwd=repo)
    assert r.code == 2
    r = run_cli("pull", "nobody", "outputs", "x", cwd=repo)
    assert r.code == 1 and "no cluster or host named 'nobody'" in r.err


# ---------------------------------------------------------------------------------------------
# down: files written since the launch


def test_new_files_since_launch_leave_out_synced_files(setup):
    target, workdir, repo = setup
    old = workdir / "train.py"
    old.write_text("synced from the repo\n")
    os.utime(old, (1_000_000, 1_000_000))  # rsync -a keeps the local mtime
    found = transfer.new_files_since_launch(state.load("box") or target)
    # The fixture's outputs were written "after launch" only if created after created_at.
    names = [n for n, _ in found.files]
    assert "train.py" not in names


def test_down_purge_lists_new_files_and_asks(run_cli, sshd_server, remote_tmp, tmp_path):  # noqa: F811
    workdir = remote_tmp / "w"
    (workdir / ".gpu-lol").mkdir(parents=True)
    (workdir / ".gpu-lol" / "target.json").write_text('{"name": "box"}\n')
    (workdir / "train.py").write_text("x\n")
    os.utime(workdir / "train.py", (1_000_000, 1_000_000))
    repo = tmp_path / "repo"
    repo.mkdir()
    target = make_target(sshd_server, workdir, repo, created_at=time.time() - 60)
    (workdir / "outputs").mkdir()
    (workdir / "outputs" / "final.ckpt").write_bytes(b"w" * 2048)
    try:
        r = run_cli("down", "box", "--purge")
        assert r.code == 2, r
        assert "outputs/final.ckpt" in r.err and "written since launch" in r.err
        assert "gpu-lol pull box outputs" in r.err
        assert "train.py" not in r.err
        assert workdir.exists() and state.load("box") is not None
        r = run_cli("down", "box", "--purge", "--yes")
        assert r.code == 0, r
        assert not workdir.exists()
    finally:
        remote.close(target)


def test_down_without_purge_does_not_look(run_cli, sshd_server, remote_tmp, tmp_path):  # noqa: F811
    """Forgetting a host keeps its workdir: nothing to warn about, no SSH round trip needed."""
    workdir = remote_tmp / "w"
    (workdir / "outputs").mkdir(parents=True)
    (workdir / "outputs" / "final.ckpt").write_bytes(b"w")
    make_target(sshd_server, workdir, tmp_path, created_at=time.time() - 60)
    r = run_cli("down", "box", "--yes")
    assert r.code == 0 and "written since launch" not in r.err
    assert (workdir / "outputs" / "final.ckpt").exists()


def test_unreachable_host_is_one_line_with_a_hint(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = Target(name="gone", kind="host", repo=str(tmp_path),
                    extra={"host": "127.0.0.1", "port": port, "workdir": "~/w", "venv": None})
    state.save(target)
    with pytest.raises(OperationError) as err:
        transfer.pull(target, "outputs", str(tmp_path))
    assert "Connection refused" in err.value.message and err.value.hint.startswith("is sshd running")


def test_cluster_teardown_lists_new_files_over_its_generated_config(sshd_server, remote_tmp, capsys):  # noqa: F811
    """A cluster record reaches its machine through SkyPilot's generated ssh config; what SkyPilot
    reports about the cluster (UP / STOPPED) cannot come from a cloud here, so it is plain data."""
    from gpu_lol.launch.skypilot import ClusterStatus
    from gpu_lol.machine.lifecycle import DownPlan

    config = Path.home() / ".sky" / "generated" / "ssh" / "gpu-lol-c"
    config.parent.mkdir(parents=True)
    config.write_text(
        "Host gpu-lol-c\n"
        f"  HostName {sshd_server.host}\n  User {sshd_server.user}\n  IdentityFile {sshd_server.identity}\n"
        "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile=/dev/null\n"
        f"  Port {sshd_server.port}\n")
    (remote_tmp / "ckpt").mkdir()
    (remote_tmp / "ckpt" / "step-100.pt").write_bytes(b"x" * 4096)
    (remote_tmp / ".git").mkdir()
    (remote_tmp / ".git" / "index").write_bytes(b"new but never listed")
    target = Target(name="gpu-lol-c", kind="sky", repo=str(remote_tmp), created_at=time.time() - 60,
                    extra={"workdir": str(remote_tmp)})
    try:
        up = DownPlan(name="gpu-lol-c", target=target, cluster=ClusterStatus(name="gpu-lol-c", status="UP"))
        found = transfer.check_before_down([up], purge=False)
        assert [n for n, _ in found[0].files] == ["ckpt/step-100.pt"]
        err = capsys.readouterr().err
        assert "ckpt/step-100.pt (4.0 KB)" in err and "gpu-lol pull gpu-lol-c ckpt" in err
        stopped = DownPlan(name="gpu-lol-c", target=target,
                           cluster=ClusterStatus(name="gpu-lol-c", status="STOPPED"))
        assert transfer.check_before_down([stopped], purge=False) == []
        assert "is stopped" in capsys.readouterr().err
    finally:
        remote.close(target)



def _on_a_terminal(argv: list[str], needle: bytes, answer: bytes) -> tuple[int, bytes]:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=os.environ.copy(),
                            start_new_session=True)
    os.close(slave)
    try:
        seen = read_until(master, needle)
        assert needle in seen, seen
        os.write(master, answer)
        rest = read_until(master, b"\x00", timeout=20)  # everything until it exits
        return proc.wait(timeout=30), seen + rest
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_down_on_a_terminal_asks_and_no_keeps_everything(sshd_server, remote_tmp, tmp_path, gpu_lol_exe):  # noqa: F811
    workdir = remote_tmp / "w"
    (workdir / ".gpu-lol").mkdir(parents=True)
    (workdir / ".gpu-lol" / "target.json").write_text('{"name": "box"}\n')
    target = make_target(sshd_server, workdir, tmp_path, created_at=time.time() - 60)
    (workdir / "outputs").mkdir()
    (workdir / "outputs" / "final.ckpt").write_bytes(b"w" * 10)
    try:
        code, text = _on_a_terminal([*gpu_lol_exe, "down", "box", "--purge"], b"delete the new files", b"n\n")
        assert code == 1 and b"outputs/final.ckpt" in text and b"Cancelled" in text
        assert (workdir / "outputs" / "final.ckpt").exists() and state.load("box") is not None
    finally:
        remote.close(target)


def test_pull_on_a_terminal_asks_before_overwriting_a_newer_file(setup, gpu_lol_exe):
    target, _, repo = setup
    (repo / "outputs").mkdir()
    mine = repo / "outputs" / "metrics.json"
    mine.write_text("mine\n")
    future = time.time() + 3600
    os.utime(mine, (future, future))
    code, text = _on_a_terminal([*gpu_lol_exe, "pull", "box", "outputs"], b"Overwrite them?", b"n\n")
    assert code == 1 and b"metrics.json" in text and mine.read_text() == "mine\n"
    code, text = _on_a_terminal([*gpu_lol_exe, "pull", "box", "outputs"], b"Overwrite them?", b"y\n")
    assert code == 0, text
    assert mine.read_text() == '{"loss": 0.1}\n'


def test_pull_a_wildcard_is_expanded_by_the_remote_rsync(setup):
    """With --secluded-args the remote rsync (not a shell) expands wildcards."""
    target, workdir, repo = setup
    (workdir / "outputs" / "b.pt").write_bytes(b"b")
    (workdir / "outputs" / "c.pt").write_bytes(b"c")
    transfer.pull(target, "outputs/*.pt", None, progress=False)
    assert sorted(p.name for p in (repo / "outputs").iterdir()) == ["b.pt", "c.pt"]
