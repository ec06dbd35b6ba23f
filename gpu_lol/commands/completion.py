"""Shell completion values (click's ``_GPU_LOL_COMPLETE`` protocol; see docs/launch.md).

Cheap on purpose: a completion runs the whole CLI for every Tab, so these read the bundled GPU
table and gpu-lol's own target records (small JSON files) and never import SkyPilot or ask a
server.
"""

from __future__ import annotations

from click.shell_completion import CompletionItem


def _matching(values: list[tuple[str, str]], incomplete: str) -> list[CompletionItem]:
    """Case-insensitive prefix matches, else substring matches (``4090`` -> RTX4090)."""
    low = incomplete.lower()
    hits = [(v, h) for v, h in values if v.lower().startswith(low)]
    if not hits and low:
        hits = [(v, h) for v, h in values if low in v.lower()]
    return [CompletionItem(value, help=help_text) for value, help_text in hits]


def complete_gpu(ctx, param, incomplete: str) -> list[CompletionItem]:
    """GPU ids of the catalog (gpu_lol/data/gpus.yaml), with memory and list price."""
    try:
        from gpu_lol.sizing.catalog import all_gpus

        gpus = all_gpus()
    except Exception:  # noqa: BLE001 - a completion never prints a traceback into the shell
        return []
    return _matching([(g.id, f"{g.vram_gb:g} GB, from ${g.price_hr:.2f}/hr") for g in gpus], incomplete)


def target_names() -> list[tuple[str, str]]:
    """(name, what it is) for every cluster and host gpu-lol recorded."""
    try:
        from gpu_lol.launch import state

        targets = state.all_targets()
    except Exception:  # noqa: BLE001 - see complete_gpu
        return []
    out = []
    for t in targets:
        spec = t.spec or {}
        what = "host" if t.kind == state.KIND_HOST else "cluster"
        if spec.get("gpu_type"):
            what += f", {spec.get('gpu_count') or 1}x {spec['gpu_type']}"
        out.append((t.name, what))
    return out


def complete_target(ctx, param, incomplete: str) -> list[CompletionItem]:
    """Cluster and host names gpu-lol knows (gpu_lol/launch/state.py). For an argument that takes
    several words (``pull [NAME] REMOTE``), only the first word is a name."""
    if param.nargs == -1 and param.name not in ("names",) and ctx.params.get(param.name):
        return []
    taken = set(ctx.params.get(param.name) or ()) if param.name == "names" else set()
    return [item for item in _matching(target_names(), incomplete) if item.value not in taken]


# Positional arguments whose (first) word is a target name, by parameter name.
TARGET_ARGUMENTS = frozenset({"name", "names", "words", "args"})
# Options that take a GPU id, by parameter name (`up --gpu`, `estimate --gpu`).
GPU_OPTIONS = frozenset({"gpu", "gpu_type"})


def attach(command) -> None:
    """Give ``command``'s target-name arguments and GPU options their completions (unless a
    parameter brings its own). Called once per command by the CLI's lazy group."""
    import click

    for param in command.params:
        if getattr(param, "_custom_shell_complete", "missing") is not None:
            continue  # has its own (or a click without this hook: leave it alone)
        if isinstance(param, click.Argument) and param.name in TARGET_ARGUMENTS:
            param._custom_shell_complete = complete_target
        elif isinstance(param, click.Option) and param.name in GPU_OPTIONS and not param.is_flag:
            param._custom_shell_complete = complete_gpu
