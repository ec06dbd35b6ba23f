"""`gpu-lol estimate`: GPU memory for a model, term by term, and the cheapest GPUs that hold it."""

from __future__ import annotations

import click

# Same values as gpu_lol.spec.METHODS / PROVIDERS (kept literal so this module imports only click;
# tests check they match).
METHOD_CHOICES = ("full", "lora", "qlora", "inference", "inference-int8", "inference-int4")
PROVIDER_CHOICES = ("runpod", "vast", "lambda")
SHARDING_CHOICES = ("auto", "ddp", "zero1", "zero2", "zero3", "fsdp")


@click.command("estimate")
@click.argument("model")
@click.option("--method", "-m", type=click.Choice(METHOD_CHOICES), default="inference",
              show_default=True, help="What runs: inference (bf16), int8/int4 inference, or training.")
@click.option("--params", "params_b", type=float, metavar="B",
              help="Parameters in billions (for models not in the table, or to override it).")
@click.option("--batch-size", type=int, metavar="N", help="Batch size per GPU.")
@click.option("--seq-len", type=int, metavar="N",
              help="Tokens per sample (prompt + output for inference).")
@click.option("--gpus", "gpu_count", type=int, metavar="N", help="Use exactly N GPUs.")
@click.option("--gpu", "gpu_type", metavar="ID", help="Use this GPU (see `gpu-lol gpus`).")
@click.option("--provider", "-p", "providers", multiple=True, type=click.Choice(PROVIDER_CHOICES),
              help="Only these providers (repeatable; default: all).")
@click.option("--optimizer", default="adamw", show_default=True,
              help="Training optimizer: adamw, adamw-8bit, sgd, lion, adafactor.")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None,
              help="Training recomputes activations (default: on for qlora, as PEFT's "
                   "prepare_model_for_kbit_training does; off otherwise).")
@click.option("--sharding", type=click.Choice(SHARDING_CHOICES), default="auto", show_default=True,
              help="Multi-GPU training: auto (FSDP when more than one GPU), ddp, zero1-3, fsdp.")
@click.option("--tensor-parallel", type=int, metavar="N", help="Tensor-parallel degree.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def estimate_command(model: str, method: str, params_b: float | None, batch_size: int | None,
                     seq_len: int | None, gpu_count: int | None, gpu_type: str | None,
                     providers: tuple[str, ...], optimizer: str, gradient_checkpointing: bool | None,
                     sharding: str, tensor_parallel: int | None, as_json: bool) -> int:
    """Estimate GPU memory for MODEL and pick the cheapest GPUs that fit.

    MODEL is a Hugging Face id (meta-llama/Llama-3.1-8B), a name with a size (my-model-7b), or the
    path to a local config.json.
    """
    from gpu_lol.errors import UsageError
    from gpu_lol.sizing.models import resolve_model
    from gpu_lol.sizing.selection import pick_for

    for flag, value in (("--batch-size", batch_size), ("--seq-len", seq_len), ("--gpus", gpu_count),
                        ("--tensor-parallel", tensor_parallel)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    zero_stage, fsdp = {"auto": (None, None), "ddp": (0, False), "zero1": (1, False),
                        "zero2": (2, False), "zero3": (3, False), "fsdp": (None, True)}[sharding]
    facts = resolve_model(model, params_b)
    try:
        est, sel = pick_for(facts, method=method, batch_size=batch_size, seq_len=seq_len,
                            optimizer=optimizer,
                            gradient_checkpointing=(method == "qlora") if gradient_checkpointing is None
                            else gradient_checkpointing,
                            zero_stage=zero_stage, fsdp=fsdp, tensor_parallel=tensor_parallel,
                            gpu_type=gpu_type, gpu_count=gpu_count,
                            providers=list(providers) or None)
    except ValueError as exc:
        raise UsageError(str(exc), "see `gpu-lol estimate --help`") from None

    report = {
        "model": facts.name,
        "model_source": facts.source,
        "model_note": facts.note,
        "kind": facts.kind,
        "params_b": est.params_b,
        "active_params_b": facts.active_params_b,
        "method": method,
        "vram_gb": est.per_gpu_gb,
        "total_vram_gb": est.total_gb,
        "gpu_type": sel.gpu_type,
        "gpu_count": sel.gpu_count,
        "fits": sel.fits,
        "price_hr": sel.price_hr,
        "price_source": sel.price_source,
        "providers": list(sel.providers),
        "breakdown": dict(est.breakdown),
        "assumptions": list(est.assumptions),
        "reason": sel.reason,
        "warnings": list(sel.warnings),
        "alternatives": [a.to_dict(with_alternatives=False) for a in sel.alternatives],
    }
    if as_json:
        from gpu_lol.console import print_json

        print_json(report)
    else:
        _render(report)
    return 0


_TERM_LABELS = {
    "weights": "weights", "gradients": "gradients", "optimizer": "optimizer states",
    "adapters": "LoRA adapters (+grads, optimizer)", "activations": "activations",
    "kv_cache": "KV cache", "overhead": "allocator / framework overhead",
    "cuda_context": "CUDA context",
}


def _render(report: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    from gpu_lol.console import stdout

    out = stdout()
    params = report["params_b"]
    size = f"{params * 1000:.0f}M" if params < 1 else f"{params:g}B"
    active = f", {report['active_params_b']:g}B active" if report.get("active_params_b") else ""
    out.print(f"[bold]{escape(report['model'])}[/] · {size} parameters{active} · {report['kind']} · "
              f"[bold]{report['method']}[/]")
    out.print(f"[dim]{escape(report['model_note'])}[/]", soft_wrap=True)

    count = report["gpu_count"]
    table = Table(title=f"Memory per GPU ({count} GPU{'s' if count > 1 else ''})",
                  title_justify="left", show_edge=False)
    table.add_column("term")
    table.add_column("GiB", justify="right")
    for key, value in report["breakdown"].items():
        if value:
            table.add_row(_TERM_LABELS.get(key, key), f"{value:,.2f}")
    table.add_section()
    table.add_row("[bold]needed per GPU[/]", f"[bold]{report['vram_gb']:,.2f}[/]")
    if count > 1:
        table.add_row("total", f"{report['total_vram_gb']:,.2f}")
    out.print(table)
    out.print("[dim]assumptions:[/]")
    for line in report["assumptions"]:
        out.print(f"[dim]  - {escape(line)}[/]", soft_wrap=True)

    picks = Table(title="Cheapest GPUs that fit", title_justify="left", show_edge=False)
    for col, justify in (("GPU", "left"), ("count", "right"), ("VRAM", "right"),
                         ("need/GPU", "right"), ("$/hr", "right"), ("providers", "left")):
        picks.add_column(col, justify=justify)
    first = {"gpu_type": report["gpu_type"], "gpu_count": count,
             "vram_per_gpu_gb": None, "need_per_gpu_gb": report["vram_gb"],
             "price_hr": report["price_hr"], "providers": report["providers"],
             "fits": report["fits"]}
    from gpu_lol.sizing.catalog import get_gpu

    gpu = get_gpu(report["gpu_type"])
    first["vram_per_gpu_gb"] = gpu.vram_gb if gpu else 0
    for i, row in enumerate([first] + report["alternatives"]):
        name = row["gpu_type"] + ("" if row.get("fits", True) else " [red](does not fit)[/]")
        if i == 0:
            name = f"[bold green]{name}[/]" if row.get("fits", True) else f"[bold]{name}[/]"
        picks.add_row(name, str(row["gpu_count"]), f"{row['vram_per_gpu_gb']:g} GiB",
                      f"{row['need_per_gpu_gb']:,.1f} GiB", f"${row['price_hr']:,.2f}",
                      ", ".join(row["providers"]) or "-")
    out.print(picks)
    out.print(f"[dim]{escape(report['reason'])}[/]", soft_wrap=True)
    out.print(f"[dim]prices: {escape(report['price_source'])}, on-demand[/]", soft_wrap=True)
    for warning in report["warnings"]:
        out.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
