"""``gpu-lol run`` / ``exec --detach``: long work as a SkyPilot job, which autostop waits for.

SkyPilot's autostop counts a cluster busy while one of its jobs runs (``job_lib.is_cluster_idle``
in ``sky/skylet/events.py: StopEvent``), whatever SSH sessions exist. A command started with
tmux/nohup, or an ``exec`` whose local ssh went away, is invisible to it: with ``down: true``
(RunPod, Lambda) the machine and its disk are deleted mid-run. ``run`` submits the command with
``sky.exec`` (SkyPilot syncs the repo to ``~/sky_workdir`` first, as for a launch), streams the
job's log, and returns the command's own exit code; ``--detach`` returns once the job is queued.

The job asks for the cluster's own accelerators (a SkyPilot job that asks for none gets an empty
``CUDA_VISIBLE_DEVICES``), carries the spec's envs and the forwarded secrets (SkyPilot secrets:
kept out of its logs), and records the exit code in ``~/.gpu-lol/jobs/<token>.rc`` on the machine,
which ``run`` reads back over SSH (SkyPilot itself reports only succeeded/failed).
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass
from typing import Any

from gpu_lol.errors import OperationError, UsageError
from gpu_lol.launch.state import KIND_SKY, Target

JOB_RC_DIR = "~/.gpu-lol/jobs"
JOB_NAME_PREFIX = "gpu-lol-run"
# SkyPilot's job exit codes (sky.exceptions.JobExitCode)
SKY_FAILED = 100


@dataclass
class Submitted:
    job_id: int | None
    token: str
    request_id: str | None = None


def rc_path(token: str) -> str:
    return f"{JOB_RC_DIR}/{token}.rc"


def run_script(command: list[str] | str, token: str) -> str:
    """The job's ``run``: the user's command in the synced workdir; its exit code is written to
    the rc file on any exit (an ``exit N`` inside the command included)."""
    from gpu_lol.launch.skypilot import SECRETS_FILE
    from gpu_lol.machine.remote import SKY_WORKDIR, command_text, shell_path

    rc = shell_path(rc_path(token))
    rc_dir = shell_path(JOB_RC_DIR)
    secrets = shell_path(SECRETS_FILE)
    return "\n".join([
        f"trap 'rc=$?; mkdir -p {rc_dir} && echo \"$rc\" > {rc}; exit \"$rc\"' EXIT",
        f"cd {shell_path(SKY_WORKDIR)} 2>/dev/null || true",
        f"if [ -f {secrets} ]; then set -a; . {secrets}; set +a; fi",
        command_text(command),
    ]) + "\n"


def job_task(target: Target, command: list[str] | str, token: str, *,
             accelerators: dict[str, int] | None, secrets: dict[str, str] | None = None,
             sync: bool = True) -> dict[str, Any]:
    """The SkyPilot task ``run`` submits (a dict for ``sky.Task.from_yaml_config``)."""
    from gpu_lol.secrets.sensitive import is_secret_env_name

    task: dict[str, Any] = {"name": f"{JOB_NAME_PREFIX}-{token[:8]}", "run": run_script(command, token)}
    if sync:
        task["workdir"] = str(target.repo)
    envs = {}
    for key, value in ((target.spec or {}).get("envs") or {}).items():
        if isinstance(key, str) and key.isidentifier() and not is_secret_env_name(key):
            envs[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if envs:
        task["envs"] = envs
    if secrets:
        task["secrets"] = dict(secrets)
    if accelerators:
        task["resources"] = {"accelerators": {str(k): int(v) for k, v in accelerators.items()}}
    return task


def cluster_accelerators(name: str) -> dict[str, int] | None:
    """The accelerators the cluster was launched with ({'H100': 1}); raises when it is not UP."""
    import sky

    from gpu_lol.launch import skypilot

    records = skypilot.call(lambda: skypilot._get(sky.status([name], all_users=True)))
    record = next((r for r in records if skypilot._record_value(r, "name") == name), None)
    if record is None:
        raise OperationError(f"SkyPilot has no cluster named '{name}'",
                             "see `gpu-lol ls`; launch with `gpu-lol up`")
    status = skypilot._record_value(record, "status")
    status = str(getattr(status, "value", status))
    if status != "UP":
        hint = (f"start it with `gpu-lol start {name}`" if status == "STOPPED" else
                f"wait for it (`gpu-lol ls`) or `gpu-lol down {name}`")
        raise OperationError(f"cluster '{name}' is {status}, not UP", hint)
    handle = skypilot._record_value(record, "handle")
    launched = getattr(handle, "launched_resources", None)
    accs = getattr(launched, "accelerators", None) if launched is not None else None
    if accs:
        return {str(k): int(v) for k, v in dict(accs).items()}
    return _accelerators_from_spec(record, name)


def _accelerators_from_spec(record: Any, name: str) -> dict[str, int] | None:
    from gpu_lol.launch import state
    from gpu_lol.sizing import catalog

    target = state.load(name)
    spec = target.spec if target else {}
    cloud = str(target.extra.get("cloud") or "") if target else ""
    gpu = spec.get("gpu_type")
    if not gpu or spec.get("workload_type") == "cpu":
        return None
    sky_name = catalog.provider_name(gpu, cloud) or gpu
    return {sky_name: int(spec.get("gpu_count") or 1)}


def job_secrets(target: Target) -> dict[str, str]:
    """The secrets a job gets: the ones forwarded from this shell at launch, when still set."""
    from gpu_lol.launch import FORWARDED_SECRETS

    names = list(FORWARDED_SECRETS) + [n for n in target.extra.get("secret_names", []) if n not in FORWARDED_SECRETS]
    return {n: os.environ[n] for n in names if os.environ.get(n)}


def submit(target: Target, command: list[str] | str, *, sync: bool = True) -> Submitted:
    """Queue the command as a SkyPilot job on the cluster; returns its job id."""
    import sky

    from gpu_lol.launch import skypilot

    if target.kind != KIND_SKY:
        raise UsageError(f"'{target.name}' is your own host: it has no SkyPilot job queue",
                         f"run it inline with `gpu-lol exec {target.name} -- ...` (a host has no autostop)")
    if not command:
        raise UsageError("no command given", "put the command after --, e.g. gpu-lol run -- python train.py")
    if sync and not os.path.isdir(target.repo):
        raise OperationError(f"the repo {target.repo} of '{target.name}' does not exist here",
                             "run from the repo, or pass --no-sync to use the copy on the machine")
    token = uuid.uuid4().hex
    accelerators = cluster_accelerators(target.name)
    task = skypilot.validate_task(job_task(target, command, token, accelerators=accelerators,
                                           secrets=job_secrets(target), sync=sync))

    def _run():
        request_id = sky.exec(task, cluster_name=target.name)
        result = skypilot._stream(request_id)
        job_id = result[0] if isinstance(result, tuple) and result else None
        return Submitted(job_id=job_id, token=token, request_id=str(request_id))

    return skypilot.call(_run, explain_kw={"what": f"a job on {target.name}"})


def follow(target: Target, job_id: int | None, *, token: str | None = None) -> int:
    """Stream the job's log until it ends; the command's exit code (or SkyPilot's job code)."""
    import sky

    from gpu_lol.launch import skypilot

    try:
        # the job's output is the command's: our stdout (SkyPilot's own chatter goes to stderr)
        from gpu_lol.console import plain_stream  # no ANSI codes into a pipe or a NO_COLOR terminal

        code = int(skypilot.call(sky.tail_logs, target.name, job_id, True,
                                 output_stream=plain_stream(sys.stdout)) or 0)
    except KeyboardInterrupt:
        from gpu_lol.console import info

        info(f"\nstopped following; job {job_id} keeps running on {target.name}: "
             f"`gpu-lol logs {target.name} {job_id}` follows it again, `sky cancel {target.name} {job_id}` stops it")
        return 130
    if token:
        actual = read_exit_code(target, token)
        if actual is not None:
            return actual
    return 1 if code == SKY_FAILED else code


def read_exit_code(target: Target, token: str) -> int | None:
    """The exit code the job wrote on the machine, or None when it cannot be read."""
    from gpu_lol.machine import remote

    path = remote.shell_path(rc_path(token))
    try:
        result = remote.capture(target, f"cat {path} && rm -f {path}", cd="skip", login=False, timeout=180)
    except OperationError:
        return None
    text = result.stdout.strip()
    return int(text) if result.returncode == 0 and text.lstrip("-").isdigit() else None


def run(target: Target, command: list[str] | str, *, detach: bool = False, sync: bool = True) -> int:
    """``gpu-lol run``: submit, then (unless ``detach``) follow the log; returns the exit code."""
    from gpu_lol.console import info

    submitted = submit(target, command, sync=sync)
    job = submitted.job_id
    if detach:
        info(f"job {job} queued on {target.name}; autostop waits for it. Follow it: "
             f"gpu-lol logs {target.name} {job}")
        print(job if job is not None else "", file=sys.stdout)
        return 0
    info(f"job {job} on {target.name} (Ctrl-C stops following, not the job)")
    return follow(target, job, token=submitted.token)
