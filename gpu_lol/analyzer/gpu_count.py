"""How many GPUs, and how the work is spread across them.

Explicit settings first, from the launch command of the chosen path (``--nproc_per_node``,
``--num_processes`` or the accelerate config it names, ``deepspeed --num_gpus``/``--include``,
``--tensor-parallel-size``/``--tp``, ``--num-shard``, ``mpirun -np``, ``--devices``, Hydra
``n_gpus_per_node=``), then explicit counts in code (``LLM(tensor_parallel_size=2)``,
``Trainer(devices=4)``). Distributed imports alone never make a repo multi-GPU: without an
explicit count the memory estimate decides (and only work that can be sharded is spread).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gpu_lol.analyzer.configs import ConfigFacts
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.launch_commands import Command
from gpu_lol.analyzer.python_signals import FileSignals
from gpu_lol.analyzer.values import as_int as _int

MAX_GPUS = 16
LAUNCHER_KEYS = {
    "torchrun": ("nproc_per_node", "nproc"),
    "accelerate": ("num_processes",),
    "deepspeed": ("num_gpus",),
}
SCRIPT_KEYS = ("tensor_parallel_size", "tp", "tp_size", "num_shard", "num_gpus", "n_gpus", "gpus", "ngpus",
               "n_gpus_per_node", "gpus_per_node", "devices", "num_gpus_per_node", "nproc_per_node")


@dataclass
class Parallelism:
    count: int | None = None  # explicit GPU count (per node)
    evidence: list[Evidence] = field(default_factory=list)
    nodes: int = 1
    zero_stage: int | None = None
    offload: bool = False
    fsdp: bool = False
    tensor_parallel: int | None = None
    device_map_auto: bool = False
    multi_process_launcher: bool = False  # torchrun/accelerate/deepspeed: data parallel by default
    shardable: bool = False  # whether more GPUs can split the memory need
    notes: list[str] = field(default_factory=list)


def count_from_command(cmd: Command, configs: dict[str, ConfigFacts], resolve) -> tuple[int | None, Evidence | None]:
    for key in LAUNCHER_KEYS.get(cmd.launcher, ()):
        n = _int(cmd.launcher_args.get(key))
        if n:
            return n, cmd.evidence
    if cmd.launcher == "deepspeed":
        include = cmd.launcher_args.get("include")
        if isinstance(include, str) and ":" in include:
            return len(include.split(":", 1)[1].split(",")), cmd.evidence
    if cmd.launcher == "accelerate":
        ref = cmd.launcher_args.get("config_file")
        if isinstance(ref, str):
            rel = resolve(ref, cmd.evidence.file)
            cfg = configs.get(rel) if rel else None
            if cfg is not None:
                for n, ev in cfg.counts:
                    return n, ev
    n = _int(cmd.launcher_args.get("compose_gpus"))
    if n:
        return n, cmd.evidence
    for key in SCRIPT_KEYS:
        n = _int(cmd.args.get(key))
        if n and 1 <= n <= 64:
            tp = _int(cmd.args.get("pipeline_parallel_size")) or 1
            return n * tp, cmd.evidence
    for key in ("n_gpus_per_node", "trainer.n_gpus_per_node"):
        n = _int(cmd.args.get(key))
        if n:
            return n, cmd.evidence
    return None, None


def decide(*, workload: str, main_commands: list[Command], all_commands: list[Command], configs: dict[str, ConfigFacts],
           referenced: list[ConfigFacts], signals: list[FileSignals], resolve, package_names: set[str],
           main_files: list[str] | None = None) -> Parallelism:
    """``main_files``: the files that are the main path when no command is (a notebook repo's first
    README-linked notebook); counts in code come only from them."""
    par = Parallelism()
    # The count belongs to the main command, the script it runs, and the configs they name; an
    # alternative command further down the README (`--num-gpus 2` "if you have two") is not it.
    ordered = main_commands[:1]
    if ordered and ordered[0].launcher == "shell" and ordered[0].script:
        script = ordered[0].script.lstrip("./")
        ordered += [c for c in all_commands if c.evidence.file == script]
    for cmd in ordered:
        n, ev = count_from_command(cmd, configs, resolve)
        if n:
            if n > MAX_GPUS:
                par.notes.append(f"{ev.cite()} asks for {n} GPUs; gpu-lol launches one machine of at most {MAX_GPUS}")
                n = MAX_GPUS
            par.count = n
            par.evidence.append(ev)
            nodes = _int(cmd.launcher_args.get("nnodes")) or _int(cmd.launcher_args.get("num_nodes")) or \
                _int(cmd.launcher_args.get("num_machines")) or 1
            if nodes > 1:
                par.nodes = nodes
                par.notes.append(f"{cmd.evidence.cite()} runs on {nodes} nodes; gpu-lol launches one node of "
                                 f"{n} GPUs")
            break
    main = main_commands[0] if main_commands else None
    # `python train.py` from the README's quick start is one process on one GPU: counts in reproduction
    # scripts or other entry files belong to other paths (the script it runs may still set one)
    single = main is not None and main.readme_rank is not None and main.launcher == "python" and bool(main.script)
    if par.count is None and not single:
        # no count on the main path: the repo's own launch scripts of the same role, when they agree
        role = main_commands[0].role if main_commands else None
        seen: list[tuple[int, Evidence]] = []
        for cmd in all_commands:  # the repo's own scripts, not its examples
            if cmd.origin == "script" and cmd.role == role and cmd.weight >= 1.0:
                n, ev = count_from_command(cmd, configs, resolve)
                if n:
                    seen.append((n, ev))
        if seen:
            top = max({n for n, _ in seen}, key=lambda n: sum(1 for m, _ in seen if m == n))
            agreeing = [ev for n, ev in seen if n == top]
            if len(agreeing) * 3 >= len(seen) * 2:  # two thirds of the repo's scripts agree
                par.count = min(top, MAX_GPUS)
                par.evidence.append(agreeing[0])
                par.notes.append(f"GPU count {top} from {len(agreeing)} of the repo's {len(seen)} launch scripts "
                                 f"({agreeing[0].cite()}); the documented command sets none")
    if par.count is None:
        # counts written in code belong to the main path too: with a README command, only the files it
        # runs (a `gpus=8` in a data-generation pipeline elsewhere is not the quick start's count)
        documented = main is not None and main.readme_rank is not None
        owns = {(c.script or "").lstrip("./") for c in ordered if c.script} if documented else set()
        for sig in signals:
            if sig.weight == 0 or not (sig.is_entry or sig.is_notebook):
                continue
            if documented and not any(own and (sig.file == own or sig.file.endswith("/" + own)) for own in owns):
                continue
            if main_files is not None and sig.file not in main_files:
                continue  # another notebook of the collection (a multi-GPU chapter) is not the first lesson
            for n, ev in sig.gpu_counts:
                par.count = min(n, MAX_GPUS)
                par.evidence.append(ev)
                break
            if par.count:
                break
    for cmd in main_commands or all_commands:
        if cmd.launcher in ("torchrun", "accelerate", "deepspeed"):
            par.multi_process_launcher = True
        tp = _int(cmd.args.get("tensor_parallel_size")) or _int(cmd.args.get("tp")) or _int(cmd.args.get("num_shard"))
        if tp and tp > 1:
            par.tensor_parallel = par.tensor_parallel or tp
        if cmd.launcher in ("vllm", "tgi", "sglang"):
            par.shardable = True
        ds = cmd.args.get("deepspeed")
        if isinstance(ds, str):
            rel = resolve(ds, cmd.evidence.file)
            cfg = configs.get(rel) if rel else None
            if cfg is not None:
                referenced = referenced + [cfg]
    for cfg in referenced:
        if cfg.zero_stage and par.zero_stage is None:
            par.zero_stage = cfg.zero_stage[0]
            par.evidence.append(cfg.zero_stage[1])
        if cfg.offload:
            par.offload = True
        if cfg.fsdp:
            par.fsdp = True
            par.evidence.append(cfg.fsdp)
    for cmd in main_commands[:1]:
        fsdp = cmd.args.get("fsdp")
        named = any(isinstance(v, str) and re.search(r"\bfsdp|FSDP", v) for v in cmd.args.values())
        if (isinstance(fsdp, str) and re.search(r"full_shard|shard_grad_op|hybrid_shard", fsdp)) or named:
            par.fsdp = True  # --fsdp full_shard, trainer=FSDPTrainer, strategy=fsdp
            par.evidence.append(cmd.evidence)
    for sig in signals:
        if sig.weight and sig.device_map:
            par.device_map_auto = True
    if par.zero_stage or par.fsdp or par.tensor_parallel or par.device_map_auto:
        par.shardable = True
    if par.multi_process_launcher and workload == "training" and (par.zero_stage or par.fsdp):
        par.shardable = True
    if workload == "inference" and ("vllm" in package_names or "accelerate" in package_names):
        par.shardable = True
    return par
