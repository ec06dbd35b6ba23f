"""How the model is used: full fine-tune, LoRA, QLoRA, or inference at some precision.

QLoRA = PEFT adapters on a 4-bit base (``load_in_4bit``/``BitsAndBytesConfig(load_in_4bit=True)``,
``adapter: qlora``, ``--bits 4``); LoRA = PEFT adapters (``LoraConfig``/``get_peft_model``,
``finetuning_type: lora``, ``--use_peft``); otherwise training is a full fine-tune. Inference is
int4 for GPTQ/AWQ/GGUF/4-bit loading, int8 for 8-bit loading, else bf16/fp16.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gpu_lol.analyzer.configs import ConfigFacts
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.launch_commands import Command
from gpu_lol.analyzer.python_signals import FileSignals

_PREQUANT_NAME = re.compile(r"(awq|gptq|gguf|ggml|exl2|4bit|int4|bnb-4bit|nf4|q4_|mlx-4bit)", re.I)
_INT8_NAME = re.compile(r"(int8|8bit|w8a8|fp8)", re.I)


@dataclass
class MethodDecision:
    method: str | None
    evidence: list[Evidence] = field(default_factory=list)
    reason: str = ""
    base_bits: int | None = None  # LoRA on a quantized base (8: load_in_8bit)


def _norm(key: str) -> str:
    return key.lower().replace("-", "_").lstrip("_")


def decide(*, workload: str, training_like: bool, model_name: str | None, commands: list[Command],
           configs: list[ConfigFacts], signals: list[FileSignals], package_names: set[str],
           model_facts: object | None = None) -> MethodDecision:
    quant4: list[Evidence] = []
    quant8: list[Evidence] = []
    prequant: list[Evidence] = []
    peft: list[Evidence] = []
    full: list[Evidence] = []
    for cmd in commands:
        args = cmd.args
        if cmd.flag("load_in_4bit", "use_4bit", "q_lora", "qlora", "use_qlora") or str(args.get("bits")) == "4" \
                or str(args.get("quantization_bit")) == "4":
            quant4.append(cmd.evidence)
        if cmd.flag("load_in_8bit", "use_8bit", "int8") or str(args.get("bits")) == "8" \
                or str(args.get("quantization_bit")) == "8":
            quant8.append(cmd.evidence)
        if cmd.flag("use_peft", "use_lora", "lora") or "lora_r" in args or "lora_rank" in args \
                or str(args.get("finetuning_type", "")).lower() == "lora" or str(args.get("adapter", "")).lower() in ("lora", "qlora"):
            peft.append(cmd.evidence)
        if str(args.get("finetuning_type", "")).lower() == "full":
            full.append(cmd.evidence)
        for key in ("quantization", "quantize", "q"):
            value = str(args.get(key, "")).lower()
            if value in ("awq", "gptq", "marlin", "bitsandbytes-nf4", "bitsandbytes-fp4", "gguf", "squeezellm", "exl2"):
                prequant.append(cmd.evidence)
            elif value in ("bitsandbytes", "eetq", "fp8", "int8"):
                quant8.append(cmd.evidence)
    for cfg in configs:
        if cfg.quant4:
            quant4.append(cfg.quant4)
        if cfg.quant8:
            quant8.append(cfg.quant8)
        if cfg.adapter:
            if cfg.adapter[0] in ("lora", "qlora"):
                peft.append(cfg.adapter[1])
                if cfg.adapter[0] == "qlora":
                    quant4.append(cfg.adapter[1])
            else:
                full.append(cfg.adapter[1])
    for sig in signals:
        if sig.weight == 0:
            continue
        quant4 += sig.quant4
        # a 4-bit load behind an opt-in flag (`if args.quant:`) counts when the main command passes it
        quant4 += [ev for flag, ev in sig.quant4_optin
                   if any(_norm(flag) in {_norm(k) for k in c.args} for c in commands)]
        quant8 += sig.quant8
        prequant += sig.quant_prequant
        peft += sig.peft
    if model_name and _PREQUANT_NAME.search(model_name):
        prequant.append(Evidence("model", None, model_name))
    if workload == "cpu":
        return MethodDecision(None, [], "cpu workload")
    if training_like:
        if peft and not full:
            if quant4:
                return MethodDecision("qlora", (quant4[:1] + peft[:1]), "PEFT adapters on a 4-bit base")
            return MethodDecision("lora", peft[:2] + quant8[:1], "PEFT adapters" + (" on an 8-bit base" if quant8 else ""),
                                  base_bits=8 if quant8 else None)
        return MethodDecision("full", full[:1], "training without adapters: full fine-tune")
    native = getattr(model_facts, "native_bits", None)
    if native == 4 and not (quant8 or prequant):
        return MethodDecision("inference-int4", [], f"{model_name} is released in 4-bit (MXFP4) weights")
    if prequant or quant4:
        return MethodDecision("inference-int4", (prequant + quant4)[:2], "4-bit weights (GPTQ/AWQ/GGUF/bitsandbytes)")
    if native == 8:
        return MethodDecision("inference-int8", [], f"{model_name} is released in FP8 (1 byte per parameter)")
    if quant8 or (model_name and _INT8_NAME.search(model_name)):
        return MethodDecision("inference-int8", quant8[:2], "8-bit weights")
    return MethodDecision("inference", [], "bf16/fp16 weights")
