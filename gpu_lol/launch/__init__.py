"""The ``up`` flow as library functions: options -> :class:`Plan` -> rendered -> executed.

``build_plan`` does everything that needs no cloud account and no API server: applies the
command-line overrides to the spec, picks each provider's accelerator name, renders the SkyPilot
task and validates it with SkyPilot's own code, prices it, works out autostop, what gets synced
and which secrets go along. ``execute`` then launches through the SDK, writes the SSH config and
records the cluster. The CLI only renders what these return.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from gpu_lol.console import human_bytes
from gpu_lol.errors import ConfigError, GpuLolError, OperationError, UsageError
from gpu_lol.launch import state
from gpu_lol.sizing import catalog
from gpu_lol.spec import PROVIDERS, EnvironmentSpec

# Secrets forwarded from the local shell when set: what ML repos need to pull gated models and
# log runs. Anything else goes only when asked for with --env.
FORWARDED_SECRETS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY")
TEMPLATE_LOOKUP_TIMEOUT_S = 5.0


@dataclass
class LaunchOptions:
    """Command-line overrides for ``up`` (None: keep what the spec says)."""

    gpu: str | None = None
    gpus: int | None = None
    name: str | None = None
    idle_minutes: int | None = None
    spot: bool | None = None
    assets: list[str] = field(default_factory=list)
    template: str | None = None  # RunPod template name/id; "none" turns automatic choice off
    envs: list[str] = field(default_factory=list)  # KEY=VALUE, or KEY (value from the shell)
    ports: list[int] = field(default_factory=list)
    clouds: list[str] = field(default_factory=list)
    detach: bool = False
    auto_template: bool = True
    keep_image: bool = False  # the image is the user's (.gpu-lol.yaml, resume): never switched
    provision_timeout_min: float | None = None  # cancel and tear down a launch stuck provisioning


@dataclass
class Plan:
    repo: Path
    spec: EnvironmentSpec  # the spec as it will launch (overrides applied)
    cluster_name: str
    task: dict[str, Any]  # the real task: secret values included, never print it unredacted
    providers: list[tuple[str, str | None]]  # (provider, its accelerator name)
    gpu: catalog.GPU | None
    price_per_gpu: float | None
    cost_per_hour: float | None
    price_source: str
    autostop: dict[str, Any] | bool
    sync: Any  # gpu_lol.launch.sync.SyncPlan
    uploads: list[tuple[str, str, int]] = field(default_factory=list)  # (dest, source, bytes)
    secret_names: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)  # secrets taken from the local shell
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth a line, not a warning
    template: Any = None  # runpod_api.TemplateChoice
    offers: Any = None  # skypilot.OfferCheck
    detach: bool = False
    resolution: Any = None  # gpu_lol.launch.resolve.Resolution: what setup installs, resolved beforehand
    setup_notes: list[str] = field(default_factory=list)  # what the resolution changed or left out
    provision_timeout_min: float | None = None

    @property
    def cost_per_day(self) -> float | None:
        return None if self.cost_per_hour is None else round(self.cost_per_hour * 24, 2)

    def redacted_task(self) -> dict[str, Any]:
        from gpu_lol.launch.skypilot import redact_task

        return redact_task(self.task)

    def to_json(self) -> dict[str, Any]:
        """The ``--dry-run --json`` object (secrets redacted)."""
        from gpu_lol.secrets.redact import redact

        values = [str(v) for v in self.task.get("secrets", {}).values() if v]
        spec = self.spec.to_dict()
        spec["envs"] = {k: (REDACTED if k in self.secret_names else redact(str(v), values))
                        for k, v in spec["envs"].items()}
        spec["setup_commands"] = [redact(c, values) for c in spec["setup_commands"]]
        out: dict[str, Any] = {
            "spec": spec,
            "task": self.redacted_task(),
            "cost_per_hour": self.cost_per_hour,
            "cluster_name": self.cluster_name,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "sync": {
                "files": len(self.sync.files),
                "bytes": self.sync.total_bytes,
                "ignore_source": self.sync.ignore_source,
                "summary": self.sync.summary(),
                "warnings": list(self.sync.warnings),
                "excluded": list(self.sync.excluded),
            },
            "price_source": self.price_source,
            "providers": [{"provider": p, "accelerator": a} for p, a in self.providers],
            "autostop": self.autostop,
        }
        if self.resolution is not None:
            out["resolution"] = {**self.resolution.to_dict(), "summary": self.resolution.summary(),
                                 "notes": list(self.setup_notes)}
        if self.template is not None:
            out["template"] = {**self.template.template.to_dict(), "reason": self.template.reason}
        if self.offers is not None and self.offers.offers:
            out["offers"] = [dataclasses.asdict(o) for o in self.offers.offers]
        return out


REDACTED = "<redacted>"


# --------------------------------------------------------------------------------------------
# Options -> spec
# --------------------------------------------------------------------------------------------

def resolve_gpu(text: str) -> str:
    """A GPU id from the catalog, matched case-insensitively; a clear error with suggestions."""
    ids = catalog.gpu_ids()
    for gpu_id in ids:
        if gpu_id.lower() == text.strip().lower():
            return gpu_id
    alias = catalog.match_gpu_id(text)  # rtx-4090, 4090, a6000 (the same names .gpu-lol.yaml takes)
    if alias is not None:
        return alias
    close = difflib.get_close_matches(text.upper(), [i.upper() for i in ids], n=3, cutoff=0.5)
    suggestion = [i for i in ids if i.upper() in close]
    hint = (f"did you mean {', '.join(suggestion)}? " if suggestion else "") + "see `gpu-lol gpus`"
    raise UsageError(f"unknown GPU '{text}'", hint)


def parse_env(item: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """``KEY=VALUE`` or ``KEY`` (value taken from the local environment)."""
    import re

    key, sep, value = item.partition("=")
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
        raise UsageError(f"--env {key!r}: not a valid variable name", "use --env KEY=VALUE")
    if not sep:
        if key not in environ:
            raise UsageError(f"--env {key}: not set in your shell", f"export {key}=... or pass --env {key}=VALUE")
        value = environ[key]
    return key, value


def check_options(options: LaunchOptions) -> list[str]:
    """Validate the flags on their own (before any analysis); returns the --cloud list."""
    if options.gpu:
        resolve_gpu(options.gpu)
    if options.gpus is not None and not 1 <= options.gpus <= 16:
        raise UsageError(f"--gpus {options.gpus}: must be 1 to 16")
    if options.idle_minutes is not None and not 0 <= options.idle_minutes <= 10080:
        raise UsageError(f"--idle-minutes {options.idle_minutes}: must be 0 to 10080")
    for port in options.ports:
        if not 1 <= int(port) <= 65535:
            raise UsageError(f"--port {port}: must be 1 to 65535")
    if options.name:
        state.check_name(options.name)
    wanted: list[str] = []
    for item in options.clouds:
        for cloud in item.split(","):
            cloud = cloud.strip().lower()
            if not cloud:
                continue
            if cloud not in PROVIDERS:
                raise UsageError(f"--cloud {cloud}: not a provider gpu-lol launches on",
                                 "choose from " + ", ".join(PROVIDERS))
            if cloud not in wanted:
                wanted.append(cloud)
    for item in options.envs:
        key = item.partition("=")[0]
        if not key.replace("_", "a").isalnum() or key[:1].isdigit():
            raise UsageError(f"--env {key!r}: not a valid variable name", "use --env KEY=VALUE")
    return wanted


def apply_options(spec: EnvironmentSpec, options: LaunchOptions) -> tuple[EnvironmentSpec, list[str]]:
    """A copy of ``spec`` with the command-line overrides; returns (spec, warnings)."""
    clouds = check_options(options)
    spec = EnvironmentSpec.from_dict(spec.to_dict())
    warnings: list[str] = []
    if options.gpu:
        spec.gpu_type = resolve_gpu(options.gpu)
        if spec.workload_type == "cpu":
            spec.workload_type = "interactive"
        if spec.gpu_count < 1:
            spec.gpu_count = 1
    if options.gpus is not None:
        if spec.is_cpu and not spec.gpu_type:
            raise UsageError("--gpus needs a GPU type", "pass --gpu too (this spec is a cpu workload)")
        spec.gpu_count = options.gpus
    if options.idle_minutes is not None:
        spec.idle_minutes = options.idle_minutes
    if options.spot is not None:
        spec.spot = options.spot
    if options.ports:
        spec.ports = sorted(set(spec.ports) | {int(p) for p in options.ports})
    if clouds:
        # keep the spec's order of preference where it has one
        spec.providers = [p for p in spec.providers if p in clouds] + [p for p in clouds if p not in spec.providers]
    return spec, warnings


def load_spec_file(path: Path | None, cwd: Path | None = None) -> tuple[Path, EnvironmentSpec]:
    """``resume``'s spec: a ``.gpu-lol.yaml`` (or a directory holding one), complete enough to launch.

    Returns (absolute spec file path, spec). The repo to sync is the file's directory.
    """
    from gpu_lol.config import config_file

    base = Path(cwd or Path.cwd())
    target = Path(path) if path is not None else base
    if not target.is_absolute():
        target = base / target
    if target.is_dir():
        target = target / config_file.CONFIG_NAME
    if not target.is_file():
        raise UsageError(f"no spec file at {target}",
                         "write one with `gpu-lol init` (or `gpu-lol snapshot`), or pass its path")
    loaded = config_file.load(target)
    data = loaded.data
    missing = []
    if not data.get("base_image"):
        missing.append("base_image")
    if data.get("workload_type") != "cpu" and not data.get("gpu_type"):
        missing.append("gpu_type")
    if missing:
        raise ConfigError(f"resume launches exactly this file, but it has no {' or '.join(missing)}",
                          "run `gpu-lol init --complete --force` to write a complete file, or use `gpu-lol up`",
                          path=str(target), field=missing[0])
    return target.resolve(), EnvironmentSpec.from_dict(data)


# --------------------------------------------------------------------------------------------
# Providers, prices, alternatives
# --------------------------------------------------------------------------------------------

def provider_choices(spec: EnvironmentSpec) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(provider, accelerator name) in the spec's order, only where the provider offers the GPU."""
    warnings: list[str] = []
    providers = list(spec.providers or PROVIDERS)
    if spec.spot:
        from gpu_lol.launch.skypilot import NO_SPOT

        dropped = [p for p in providers if p in NO_SPOT]
        if dropped:
            providers = [p for p in providers if p not in NO_SPOT]
            warnings.append(f"spot: {', '.join(dropped)} has no spot instances; left out")
    if spec.is_cpu:
        if not providers:
            raise UsageError("no provider left to launch on", "drop --spot or add providers")
        # only clouds that rent CPU-only machines (Vast rents GPU machines only)
        usable = [p for p in providers if catalog.cpu_instance_for(p) is not None]
        dropped = [catalog.DISPLAY_NAMES.get(p, p) for p in providers if p not in usable]
        if not usable:
            raise UsageError(f"no CPU machine on {', '.join(dropped)}: a cpu workload never gets a GPU box",
                             "add --cloud runpod or --cloud lambda (they rent CPU-only machines)")
        if dropped:
            warnings.append(f"note: {', '.join(dropped)} has no CPU-only machines; left out")
        return [(p, None) for p in usable], warnings
    gpu = catalog.get_gpu(spec.gpu_type or "")
    if gpu is None:
        raise ConfigError(f"gpu_type '{spec.gpu_type}' is not in gpu-lol's catalog", "see `gpu-lol gpus`")
    out = [(p, gpu.providers[p]) for p in providers if p in gpu.providers]
    skipped = [p for p in providers if p not in gpu.providers]
    if not out:
        offered = ", ".join(gpu.providers) or "no provider"
        raise UsageError(f"{gpu.id} is not offered on {', '.join(providers) or 'the chosen providers'}",
                         f"{gpu.id} is on: {offered}; pass --cloud or pick another --gpu")
    if skipped:
        warnings.append(f"note: {gpu.id} is not offered on {', '.join(skipped)}")
    # Only the providers that rent this count of the card (SkyPilot's cached catalog, else the
    # built-in table): never a plan priced for a machine the cloud does not rent.
    counts = catalog.counts_by_provider(gpu.id, [p for p, _ in out])
    if counts:
        from gpu_lol.sizing import selection

        renting = [(p, a) for p, a in out if spec.gpu_count in counts.get(p, [])]
        if not renting:
            raise selection.count_error(gpu.id, spec.gpu_count, counts)
        left_out = {p: n for p, n in counts.items() if spec.gpu_count not in n}
        if left_out:
            warnings.append(f"note: {spec.gpu_count}x {gpu.id} is not rented on "
                            f"{', '.join(catalog.DISPLAY_NAMES.get(p, p) for p in left_out)} "
                            f"({catalog.describe_counts(left_out)} only); left out")
        out = [(p, a) for p, a in out if p not in left_out]
    return out, warnings


def price_table(providers: list[str]) -> tuple[dict[str, float], str]:
    """$/hr per card for each GPU id on these providers, and where the prices come from."""
    from gpu_lol.sizing import selection

    table, source = selection.price_table(providers)
    return dict(table), str(source)


def alternatives(spec: EnvironmentSpec, providers: list[str], limit: int = 3) -> list[str]:
    """The next cheapest GPUs with enough memory, as ``--gpu ID ($x/hr)`` suggestions."""
    if spec.is_cpu:
        return []
    table, _ = price_table(providers)
    need = float(spec.vram_required_gb or 0)
    rows = []
    for gpu in catalog.all_gpus():
        if gpu.id == spec.gpu_type or gpu.vram_gb < need or gpu.id not in table:
            continue
        if not any(p in gpu.providers for p in providers):
            continue
        rows.append((table[gpu.id] * spec.gpu_count, gpu))
    rows.sort(key=lambda item: item[0])
    return [f"--gpu {gpu.id} (${price:.2f}/hr, {gpu.vram_gb:g} GB)" for price, gpu in rows[:limit]]


# --------------------------------------------------------------------------------------------
# Assets, secrets, templates
# --------------------------------------------------------------------------------------------

def _dir_size(path: Path, cap: int = 50_000) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for n, (root, _dirs, files) in enumerate(os.walk(path)):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                continue
        if n > cap:
            break
    return total


def split_assets(repo: Path, assets: list[str]) -> tuple[list[str], list[tuple[str, str, int]]]:
    """``--assets SRC:DEST``: a ``./`` or ``../`` SRC that exists here is uploaded (file_mounts);
    anything else is a path on the machine (a network volume) that DEST becomes a link to."""
    from gpu_lol.launch.skypilot import parse_asset_link

    links: list[str] = []
    uploads: list[tuple[str, str, int]] = []
    for item in assets:
        src, dest = parse_asset_link(item)
        if src.startswith(("./", "../")):
            local = (repo / src).resolve()
            if not local.exists():
                raise UsageError(f"--assets {item}: {src} does not exist here",
                                 "a ./ path is uploaded from your machine; give a path on the machine "
                                 "(e.g. /workspace/data) to link a network volume instead")
            if not (dest.startswith("/") or dest.startswith("~/")):
                raise UsageError(f"--assets {item}: an uploaded path needs an absolute or ~/ destination")
            uploads.append((dest, str(local), _dir_size(local)))
        else:
            links.append(f"{src}:{dest}")
    return links, uploads


# Hugging Face repos that need an accepted licence and a token to download (prefixes, lower case).
GATED_MODEL_PREFIXES = ("meta-llama/", "black-forest-labs/flux.1-dev", "black-forest-labs/flux.1-kontext-dev",
                        "black-forest-labs/flux.1-fill-dev", "google/gemma", "google/medgemma",
                        "mistralai/mistral-large", "mistralai/codestral", "stabilityai/stable-diffusion-3",
                        "bigcode/starcoder", "tiiuae/falcon-180b", "cohereforai/", "coherelabs/")


def gated_model_warning(spec: EnvironmentSpec, secrets: Mapping[str, str]) -> str | None:
    """A warning with the fix when the spec's model is gated and no Hugging Face token goes along."""
    name = (spec.model.name if spec.model else None) or ""
    if not name.lower().startswith(GATED_MODEL_PREFIXES):
        return None
    if any(k in secrets or k in (spec.envs or {}) for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")):
        return None
    return (f"{name} is gated on Hugging Face and no HF_TOKEN goes to the machine: the download will "
            f"fail with 401. Accept its licence on huggingface.co, then `export HF_TOKEN=hf_...` "
            "(gpu-lol forwards it as a secret) or pass --env HF_TOKEN")


def collect_secrets(spec: EnvironmentSpec, env_items: list[str], environ: Mapping[str, str],
                    ) -> tuple[dict[str, str], list[str], list[str]]:
    """Split ``--env`` into spec envs and secrets; forward known ML secrets from the shell.

    Returns (secrets, forwarded names, warnings) and updates ``spec.envs`` with non-secret values.
    """
    from gpu_lol.secrets.sensitive import is_secret_env_name

    secrets: dict[str, str] = {}
    warnings: list[str] = []
    for key in list(spec.envs):
        if is_secret_env_name(key):
            warnings.append(f"envs.{key} in the spec looks like a secret: it goes as a SkyPilot secret, "
                            f"but keep it out of .gpu-lol.yaml (export {key} in your shell instead)")
    for item in env_items:
        key, value = parse_env(item, environ)
        if is_secret_env_name(key):
            secrets[key] = value
            spec.envs.pop(key, None)
        else:
            spec.envs[key] = value
    forwarded = []
    for key in FORWARDED_SECRETS:
        if key not in secrets and key not in spec.envs and environ.get(key):
            secrets[key] = environ[key]
            forwarded.append(key)
    return secrets, forwarded, warnings


def _template_pattern() -> str | None:
    try:
        from gpu_lol.config import user_config

        if "runpod.template_pattern" in user_config.KEYS:
            value = user_config.effective("runpod.template_pattern").value
            return str(value) if value else None
    except ImportError:
        pass
    from gpu_lol.launch.runpod_api import PATTERN_ENV

    return os.environ.get(PATTERN_ENV) or None


def choose_template(spec: EnvironmentSpec, providers: list[str], requested: str | None,
                    auto: bool, lookup: Callable[[], Any] | None = None) -> tuple[Any, list[str]]:
    """The RunPod template whose image to launch (or None) and warnings.

    ``requested``: a name or id pinned with ``--template`` ("none" turns the automatic choice off).
    Automatic: only when RunPod is a provider and an API key is configured.
    """
    from gpu_lol.launch import runpod_api

    warnings: list[str] = []
    if requested and requested.lower() == "none":
        return None, warnings
    if not requested and (not auto or "runpod" not in providers):
        return None, warnings
    fetch = lookup or (lambda: runpod_api.lookup(timeout=TEMPLATE_LOOKUP_TIMEOUT_S))
    found = fetch()
    if requested:
        _check_pinned_template(requested, found)
    if found.warning:
        return None, [found.warning]
    from gpu_lol.launch import skypilot

    if skypilot.team_endpoint() and found.has_key:
        warnings.append("RunPod templates are looked up with the RunPod key on this machine, but the team's "
                        "API server launches with its own RunPod account: a template of yours may not "
                        "exist there (pin an image in .gpu-lol.yaml, or --template none)")
    if requested:
        template = runpod_api.find_template(found.templates, requested)
        if template is None:
            names = ", ".join(sorted(t.name for t in found.templates)[:10]) or "none"
            raise OperationError(f"no RunPod template named or with id '{requested}'",
                                 f"your templates: {names} (see `gpu-lol templates`); or drop --template")
        return runpod_api.TemplateChoice(template=template, reason="pinned with --template"), warnings
    choice = runpod_api.best_template(found.templates, spec.base_image, _template_pattern())
    return choice, warnings


def _check_pinned_template(requested: str, found) -> None:
    """``--template NAME`` that cannot be looked up is an error: launching another image than the
    one asked for (or guessing) is worse than stopping."""
    if not found.has_key:
        raise OperationError(f"cannot look up the RunPod template '{requested}': no RunPod API key",
                             "set RUNPOD_API_KEY or api_key in ~/.runpod/config.toml (`runpod config`); "
                             "or drop --template to launch the spec's image")
    error = getattr(found, "error", None)
    if error is not None or found.warning:
        why = error.message if error is not None else found.warning
        hint = (error.hint + "; " if error is not None and error.hint else "") + \
            "or drop --template to launch the spec's image"
        raise OperationError(f"cannot look up the RunPod template '{requested}': {why}", hint)


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------

def build_plan(repo: Path, spec: EnvironmentSpec, options: LaunchOptions | None = None, *,
               environ: Mapping[str, str] | None = None,
               template_lookup: Callable[[], Any] | None = None,
               check_offers: bool = True) -> Plan:
    """Everything ``up`` will do, without launching. Needs no cloud account or API server."""
    from gpu_lol.launch import skypilot, sync

    options = options or LaunchOptions()
    environ = os.environ if environ is None else environ
    repo = Path(repo).resolve()
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory")
    spec, warnings = apply_options(spec, options)
    name = state.check_name(options.name or default_cluster_name(repo))
    existing = state.load(name)
    if existing is not None and existing.kind != state.KIND_SKY:
        raise UsageError(f"'{name}' is already the name of your host target",
                         "pass --name for the cluster, or `gpu-lol down` the host first")

    providers, provider_warnings = provider_choices(spec)
    notes = [w[len("note: "):] for w in provider_warnings if w.startswith("note: ")]
    warnings += [w for w in provider_warnings if not w.startswith("note: ")]
    provider_ids = [p for p, _ in providers]

    template, template_warnings = choose_template(spec, provider_ids, options.template,
                                                  options.auto_template, template_lookup)
    warnings += template_warnings
    if template is not None:
        spec.base_image = template.template.image

    links, uploads = split_assets(repo, options.assets)
    for link in links:
        if link not in spec.asset_links:
            spec.asset_links.append(link)

    secrets, forwarded, secret_warnings = collect_secrets(spec, options.envs, environ)
    warnings += secret_warnings
    gated = gated_model_warning(spec, secrets)
    if gated:
        warnings.append(gated)

    gpu = None if spec.is_cpu else catalog.get_gpu(spec.gpu_type or "")
    if gpu is not None and spec.vram_required_gb and spec.vram_required_gb > gpu.vram_gb:
        warnings.append(f"needs {spec.vram_required_gb:g} GB per GPU but {gpu.id} has {gpu.vram_gb:g} GB: "
                        "it will likely run out of memory (see `gpu-lol estimate`)")
    warnings += skypilot.port_warnings(provider_ids, spec.ports)
    cuda_warning = skypilot.runpod_cuda_warning(provider_ids, spec.base_image,
                                                gpu.compute_capability if gpu is not None else None)
    if cuda_warning and not spec.is_cpu:
        warnings.append(cuda_warning)
    if spec.idle_minutes == 0:
        warnings.append("autostop is off (--idle-minutes 0): the machine bills until you run "
                        f"`gpu-lol down {name}`")
    cpu_machines = [catalog.cpu_instance_for(p) for p in provider_ids] if spec.is_cpu else []
    for inst in cpu_machines:
        if inst is not None and inst.max_disk_gb is not None and spec.disk_gb > inst.max_disk_gb:
            warnings.append(f"{catalog.DISPLAY_NAMES.get(inst.provider, inst.provider)} CPU pods hold at most "
                            f"{catalog.RUNPOD_CPU_DISK_GB_PER_VCPU} GB of disk per vCPU: {inst.instance_type} gets "
                            f"{inst.max_disk_gb} GB there, not {spec.disk_gb} GB")

    # resolve what setup installs for the image's Python before anything is paid for
    from gpu_lol.launch import resolve

    checked = resolve.check_spec(spec, repo, may_change_image=not options.keep_image and template is None)
    if checked.image_changed_from is not None:
        spec.base_image, spec.python_version = checked.image, checked.python
    elif checked.python and spec.python_version != checked.python and checked.resolution.status != "skipped":
        spec.python_version = checked.python
    spec.setup_commands = checked.setup_commands
    warnings += checked.warnings

    datacenter_only = "vast" in provider_ids and skypilot.vast_datacenter_only()
    from gpu_lol.secrets.sensitive import is_secret_env_name

    secret_names = sorted(set(secrets) | {k for k in spec.envs if is_secret_env_name(k)})
    if "vast" in provider_ids and secret_names and not datacenter_only:
        warnings.append(f"Vast community hosts (machines of private individuals) receive your secrets "
                        f"({', '.join(secret_names)}) like any host: `gpu-lol config set "
                        "vast.datacenter_only true` keeps Vast to datacenter hosts, or leave Vast out (--cloud)")
    task = skypilot.render_task(spec, skypilot.RenderInput(
        name=name, workdir=repo, providers=providers, secrets=secrets,
        uploads=[skypilot.Upload(destination=d, source=s) for d, s, _ in uploads],
        vast_datacenter_only=datacenter_only))
    skypilot.validate_task(task)

    table, price_source = price_table(provider_ids)
    price_per_gpu = table.get(gpu.id) if gpu is not None else None
    cost = round(price_per_gpu * spec.gpu_count, 4) if price_per_gpu is not None else None
    exact = [o.price_hr for o in catalog.offers(provider_ids)
             if gpu is not None and o.gpu_id == gpu.id and o.count == spec.gpu_count]
    exact += [i.price_hr for i in cpu_machines if i is not None]
    if exact:  # the price of this count itself, not a per-card price from another size
        cost = round(min(exact), 4)
        price_per_gpu = round(cost / spec.gpu_count, 4) if gpu is not None and spec.gpu_count else None
    if spec.spot and gpu is not None:
        # a spot plan is priced at the spot price (SkyPilot's SpotPrice column), never on-demand
        spot_prices = [o for o in catalog.offers(provider_ids, spot=True)
                       if o.gpu_id == gpu.id and o.count == spec.gpu_count]
        on_demand = cost
        if spot_prices:
            best_spot = min(spot_prices, key=lambda o: o.price_hr)
            cost = round(best_spot.price_hr, 4)
            price_per_gpu = round(cost / spec.gpu_count, 4)
            price_source = f"spot, {catalog.describe_sources({best_spot.source})}"
        else:
            cost = price_per_gpu = None
            warnings.append("spot price unknown: only SkyPilot's cached catalog has spot prices (run "
                            "`sky show-gpus` once to cache it)"
                            + (f"; on demand it is ${on_demand:.2f}/hr" if on_demand is not None else ""))

    offers = None
    if check_offers:
        offers = _check_offers(task, spec, providers, warnings)
        if offers is not None and offers.offers:
            best = offers.offers[0]
            cost = best.price_hr
            price_source = (f"SkyPilot catalog (cached): {skypilot.DISPLAY.get(best.provider, best.provider)} "
                            f"{best.instance_type}")

    autostop = task["resources"]["autostop"]
    if "vast" in provider_ids and spec.spot:
        warnings.append("Vast spot: an instance outbid by another renter is paused (STOPPED), its disk "
                        "keeps billing and autostop never tears it down: watch `gpu-lol ls`")
    elif "vast" in provider_ids and isinstance(autostop, dict) and not autostop.get("down"):
        warnings.append("Vast: autostop stops the instance and a stopped Vast instance still bills its "
                        f"disk: `gpu-lol down {name}` when you are done")
    sync_plan = sync.plan(repo, spec)
    warnings += sync_plan.warnings
    for dest, source, size in uploads:
        if size > sync.LARGE_WORKDIR_BYTES:
            warnings.append(f"--assets uploads {human_bytes(size)} from {source} to {dest}")

    if spec.is_cpu and cpu_machines and not (offers is not None and offers.offers):
        price_source = catalog.describe_sources({i.source for i in cpu_machines if i is not None})
    return Plan(repo=repo, spec=spec, cluster_name=name, task=task, providers=providers, gpu=gpu,
                price_per_gpu=price_per_gpu, cost_per_hour=cost, price_source=price_source,
                autostop=task["resources"]["autostop"], sync=sync_plan, uploads=uploads,
                secret_names=sorted(task.get("secrets", {})), forwarded=forwarded, warnings=warnings, notes=notes,
                template=template, offers=offers, detach=options.detach, resolution=checked.resolution,
                setup_notes=checked.notes,
                provision_timeout_min=options.provision_timeout_min)


def default_cluster_name(repo: Path) -> str:
    """``gpu-lol-<repo>``; with a team API server ``gpu-lol-<user>-<repo>``, so two people
    launching from the same repo never share (or reuse) one cluster."""
    from gpu_lol.launch import skypilot

    base = state.default_name(repo)
    if not skypilot.team_endpoint():
        return base
    import re

    user = re.sub(r"[^a-z0-9-]+", "-", skypilot.current_user().lower()).strip("-")[:20].strip("-") or "user"
    return f"gpu-lol-{user}-{base[len('gpu-lol-'):]}"[:63].rstrip("-")


def _check_offers(task: dict[str, Any], spec: EnvironmentSpec, providers: list[tuple[str, str | None]],
                  warnings: list[str]):
    """SkyPilot's catalog view of the task, when its catalogs are cached; impossible -> error."""
    from gpu_lol.launch import skypilot

    try:
        result = skypilot.offers(task)
    except OperationError:
        raise
    except Exception as exc:  # noqa: BLE001 - an advisory check; SkyPilot's launch re-checks anyway
        warnings.append(f"could not read SkyPilot's cached catalog: {skypilot.clean_message(exc)}")
        return None
    if result.unavailable and not result.offers and not result.skipped:
        what = ", ".join(f"{skypilot.DISPLAY.get(p, p)}: {why}" for p, why in result.unavailable.items())
        alts = alternatives(spec, [p for p, _ in providers])
        raise OperationError(f"no provider offers this machine ({what})",
                             ("try " + "; ".join(alts)) if alts else "change --gpu/--gpus")
    for provider, why in result.unavailable.items():
        warnings.append(f"{skypilot.DISPLAY.get(provider, provider)}: {why}")
    return result


def plan_rows(plan: Plan) -> list[tuple[str, str]]:
    """The plan as (label, value) rows for people; secrets never appear."""
    from gpu_lol.console import human_bytes
    from gpu_lol.launch import skypilot
    from gpu_lol.secrets.redact import redact

    spec = plan.spec
    rows: list[tuple[str, str]] = [("cluster", f"{plan.cluster_name}  (from {plan.repo})")]
    if plan.gpu is not None:
        need = f"needs {spec.vram_required_gb:g} GB per GPU" if spec.vram_required_gb else "memory need unknown"
        rows.append(("gpu", f"{plan.gpu.id} x {spec.gpu_count}  ({plan.gpu.vram_gb:g} GB each; {need})"))
    else:
        rows.append(("gpu", "none (cpu workload)"))
        machines = [catalog.cpu_instance_for(p) for p, _ in plan.providers]
        rows.append(("machine", ", ".join(
            f"{skypilot.DISPLAY.get(i.provider, i.provider)} {i.label()} ${i.price_hr:.2f}/hr"
            for i in machines if i is not None) + "  (CPU only)"))
    rows.append(("providers", ", ".join(
        f"{skypilot.DISPLAY.get(p, p)} ({a})" if a else skypilot.DISPLAY.get(p, p) for p, a in plan.providers)
        + "  (SkyPilot launches the cheapest one available"
        + "".join(f"; {n}" for n in plan.notes) + ")"))
    image = spec.base_image
    from gpu_lol.analyzer.image import driver_needed

    driver = driver_needed(spec.base_image) if not spec.is_cpu else None
    if driver:
        image += f"  ({driver})"
    if plan.template is not None:
        image += f"  (RunPod template '{plan.template.template.name}': {plan.template.reason})"
    rows.append(("image", image))
    if plan.cost_per_hour is not None:
        rows.append(("price", f"${plan.cost_per_hour:.2f}/hr  (${plan.cost_per_day:.2f}/day at that rate; "
                              f"{plan.price_source})"))
    else:
        rows.append(("price", "unknown until SkyPilot picks an instance"))
    if plan.offers is not None and len(plan.offers.offers) > 1:
        rows.append(("also", ", ".join(f"{skypilot.DISPLAY.get(o.provider, o.provider)} {o.instance_type} "
                                        f"${o.price_hr:.2f}/hr" for o in plan.offers.offers[1:4])))
    rows.append(("autostop", describe_autostop(plan.autostop, [p for p, _ in plan.providers], spec.spot)))
    rows.append(("disk", f"{spec.disk_gb} GB" + (f", ports {', '.join(map(str, spec.ports))}" if spec.ports else "")
                 + (", spot (can be interrupted)" if spec.spot else "")))
    rows.append(("sync", plan.sync.summary() + " -> ~/sky_workdir"))
    for dest, source, size in plan.uploads:
        rows.append(("upload", f"{source} -> {dest} ({human_bytes(size)})"))
    for link in spec.asset_links:
        remote, local = skypilot.parse_asset_link(link)
        rows.append(("link", f"{local} -> {remote} (on the machine)"))
    setup: list[str] = []
    if spec.system_packages:
        setup.append("apt-get install " + " ".join(spec.system_packages))
    commands = list(spec.setup_commands)
    if not commands and spec.requirements:
        commands = [skypilot.pip_install_command(spec.requirements)]
    secret_values = [str(v) for v in plan.task.get("secrets", {}).values() if v]
    setup += [_shorten(redact(_lock_display(c), secret_values)) for c in commands[:5]]
    if len(commands) > 5:
        setup.append(f"... and {len(commands) - 5} more (see --dry-run --json)")
    if not setup:
        rows.append(("setup", "nothing to install"))
    for line in setup:
        rows.append(("setup", line))
    if plan.resolution is not None and plan.resolution.status != "skipped":
        rows.append(("resolved", plan.resolution.summary()))
    for note in plan.setup_notes:
        rows.append(("resolved", note))
    envs = [f"{k}={redact(str(v), secret_values)}" for k, v in plan.task.get("envs", {}).items()]
    envs += [f"{k}={REDACTED}" + (" (from your shell)" if k in plan.forwarded else "") for k in plan.secret_names]
    if envs:
        rows.append(("env", ", ".join(envs)))
    return rows


def _lock_display(command: str) -> str:
    """The command that writes the lock file, as a person wants to read it."""
    from gpu_lol.launch.resolve import LOCK_FILE

    if command.startswith("printf '%s\\n' ") and command.endswith(f"> {LOCK_FILE}"):
        return f"write {LOCK_FILE} ({command.count('==')} exact pins; see --dry-run --json)"
    return command


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_autostop(autostop: dict[str, Any] | bool, providers: list[str], spot: bool) -> str:
    from gpu_lol.launch.skypilot import CANNOT_STOP, DISPLAY

    if not autostop:
        return "off: bills until `gpu-lol down`"
    minutes = autostop["idle_minutes"]
    if autostop["down"]:
        why = [DISPLAY.get(p, p) for p in providers if p in CANNOT_STOP]
        reason = ("spot instances cannot stop" if spot else
                  f"{', '.join(why)} cannot stop, only tear down") if (spot or why) else "tear down"
        return f"tear down after {minutes} idle minutes ({reason})"
    return f"stop after {minutes} idle minutes (disk kept; `gpu-lol start` resumes)"


# --------------------------------------------------------------------------------------------
# Execute
# --------------------------------------------------------------------------------------------

@dataclass
class LaunchOutcome:
    target: state.Target
    ssh_config: Path | None
    job_id: int | None
    request_id: str | None
    detached: bool
    cluster: Any = None  # skypilot.ClusterStatus
    setup_exit: int | None = None  # the setup job's exit code (0: ready); None: not followed
    endpoints: dict[int, str] = field(default_factory=dict)  # port -> public endpoint (sky.endpoints)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.target.name,
            "repo": self.target.repo,
            "detached": self.detached,
            "request_id": self.request_id,
            "ssh_config": str(self.ssh_config) if self.ssh_config else None,
            "cluster": self.cluster.to_dict() if self.cluster is not None else None,
            "setup_exit": self.setup_exit,
            "ready": self.setup_exit == 0,
            "endpoints": {str(k): v for k, v in self.endpoints.items()},
            "extra": self.target.extra,
        }


def execute(plan: Plan, *, progress: Callable[[str], None] | None = None, output=None) -> LaunchOutcome:
    """Launch the plan: API server, ``sky.launch`` with live progress, SSH config, record.

    The record is written before the launch so a cluster is never left billing unrecorded (an
    interrupted launch can still be found with ``gpu-lol ls`` and removed with ``gpu-lol down``);
    it is removed again if the launch fails and SkyPilot left no cluster behind.
    """
    from gpu_lol.launch import skypilot

    say = progress or (lambda _msg: None)
    skypilot.ensure_api_server(say)
    current = skypilot.status_one(plan.cluster_name)
    me = skypilot.current_user()
    if current is not None and current.user and current.user != me:
        raise UsageError(f"'{plan.cluster_name}' is a cluster {current.user} launched: gpu-lol never "
                         "reuses another user's cluster",
                         f"pick your own name with --name (e.g. --name {plan.cluster_name[:50]}-{me[:8]})")
    if current is not None:
        say(f"{plan.cluster_name} already exists ({current.status}"
            f"{' on ' + current.provider if current.provider else ''}): SkyPilot reuses it, syncs the "
            "repo and runs setup again")
    previous = state.load(plan.cluster_name)
    target = state.Target(
        name=plan.cluster_name, kind=state.KIND_SKY, repo=str(plan.repo), spec=plan.spec.to_dict(),
        created_at=time.time(),
        extra={"price_hr": plan.cost_per_hour, "workdir": skypilot.REMOTE_WORKDIR,
               "providers": [p for p, _ in plan.providers],
               "idle_minutes": plan.spec.idle_minutes,
               "autostop_down": bool(plan.autostop and plan.autostop.get("down")),
               "image": plan.spec.base_image,
               "secret_names": list(plan.secret_names)})  # names only: `gpu-lol run` sends them again
    state.save(target)
    explain_kw = {"what": _what(plan), "tried": [p for p, _ in plan.providers],
                  "alternatives": alternatives(plan.spec, [p for p, _ in plan.providers])}
    say(f"Launching {plan.cluster_name} through SkyPilot (provisioning usually takes 2-10 minutes)...")
    task = plan.task
    if plan.sync.excluded:  # SkyPilot syncs a whole directory: give it one without the secrets
        from gpu_lol import paths
        from gpu_lol.launch import sync

        from gpu_lol.console import progress

        with progress(f"Staging the workdir without the files left out ({plan.sync.summary()})..."):
            staged = sync.stage(plan.sync, paths.state_dir("workdirs") / plan.cluster_name)
        task = {**task, "workdir": str(staged)}
    try:
        result = skypilot.launch(task, plan.cluster_name, detach=plan.detach, output=output,
                                 explain_kw=explain_kw,
                                 provision_timeout_s=(plan.provision_timeout_min or 0) * 60 or None)
    except GpuLolError as exc:
        left = _forget_if_absent(plan.cluster_name, previous)
        if left is not None and left.status == "INIT" and not isinstance(exc, skypilot.LaunchInterrupted):
            # nothing bills unseen: a failed launch that left a machine says so
            exc.hint = ((exc.hint + "; ") if exc.hint else "") + (
                f"SkyPilot left {plan.cluster_name} in INIT (a machine may exist and bill): "
                f"`gpu-lol down {plan.cluster_name}` removes it")
        raise
    except BaseException:
        _forget_if_absent(plan.cluster_name, previous)
        raise
    target.extra["request_id"] = result.request_id
    if plan.detach:
        state.save(target)
        return LaunchOutcome(target=target, ssh_config=None, job_id=None, request_id=result.request_id,
                             detached=True)
    ssh_config = skypilot.ensure_ssh_config(plan.cluster_name, result)
    cluster = None
    try:
        cluster = skypilot.status_one(plan.cluster_name)
    except OperationError:
        cluster = None
    if cluster is not None:
        target.extra.update({"cloud": cluster.provider, "region": cluster.region,
                             "resources": cluster.resources})
        if cluster.price_hr is not None:
            target.extra["price_hr"] = cluster.price_hr
    state.save(target)
    # SkyPilot folds setup into the first job: `sky.launch` returns once it is submitted. Follow
    # it to the end; the cluster is "ready" only when setup succeeded.
    setup_exit = None
    if result.job_id is not None:
        say(f"Running setup on {plan.cluster_name} (following its log; Ctrl-C stops following, not the setup)...")
        try:
            job = skypilot.follow_job(plan.cluster_name, result.job_id, output=output)
        except KeyboardInterrupt:
            raise OperationError(f"stopped following the setup of {plan.cluster_name}; it goes on there",
                                 f"`gpu-lol logs {plan.cluster_name}` to follow it; `gpu-lol down "
                                 f"{plan.cluster_name}` to stop billing") from None
        setup_exit = job.exit_code
        target.extra["setup_exit"] = job.exit_code
        state.save(target)
        if job.exit_code != 0:
            from gpu_lol.secrets.redact import redact

            secret_values = [str(v) for v in plan.task.get("secrets", {}).values() if v]
            say(f"last lines of the setup log of {plan.cluster_name}:")
            for line in job.last_lines[-12:]:
                say("  " + redact(line, secret_values))
            raise SetupFailed(plan.cluster_name, job.exit_code, job.last_lines)
    found = skypilot.endpoints(plan.cluster_name) if plan.spec.ports else {}
    return LaunchOutcome(target=target, ssh_config=ssh_config, job_id=result.job_id,
                         request_id=result.request_id, detached=False, cluster=cluster, setup_exit=setup_exit,
                         endpoints=found)


class SetupFailed(OperationError):
    """Setup (the first job) did not succeed: its last lines, and where the whole log is."""

    def __init__(self, name: str, exit_code: int, last_lines: list[str]):
        what = {100: "failed", 101: "did not finish", 102: "was not found", 103: "was cancelled"}.get(
            exit_code, f"ended with code {exit_code}")
        from gpu_lol.secrets.redact import redact

        last = redact(next((line.strip() for line in reversed(last_lines) if line.strip()), ""))
        message = f"setup on {name} {what} (SkyPilot job exit {exit_code})" + (
            f": {last[:200]}" if last else "")
        super().__init__(message, f"the whole log: `gpu-lol logs {name}`; fix the setup (.gpu-lol.yaml "
                                  f"setup_commands/requirements) and run `gpu-lol up` again (it reuses the "
                                  f"machine), or `gpu-lol down {name}` to stop billing")
        self.last_lines = last_lines
        self.job_exit = exit_code  # (exit_code is the CLI exit status: 1)


def _what(plan: Plan) -> str:
    if plan.gpu is None:
        return "CPU machine"
    return f"{plan.gpu.id} x {plan.spec.gpu_count}"


def _forget_if_absent(name: str, previous: state.Target | None):
    """After a failed launch: drop the new record unless SkyPilot still has a cluster; returns
    that cluster's status (None when it is gone or unknown)."""
    from gpu_lol.launch import skypilot

    try:
        cluster = skypilot.status_one(name)
    except (OperationError, KeyboardInterrupt):
        return None  # unknown: keep the record so `gpu-lol ls`/`down` can find it
    if cluster is not None:
        return cluster
    if previous is not None:
        state.save(previous)
    else:
        state.delete(name)
    return None


def connect_hints(name: str, spec: dict | None = None) -> list[str]:
    """What to run next; an interactive (notebook) spec gets `gpu-lol notebook` first."""
    hints = [f"gpu-lol ssh {name}", f"gpu-lol exec {name} -- nvidia-smi", f"gpu-lol down {name}"]
    if (spec or {}).get("workload_type") == "interactive":
        hints.insert(0, f"gpu-lol notebook {name}    (Jupyter Lab through an SSH tunnel)")
    return hints
