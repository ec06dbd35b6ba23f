"""What the Python code does, read with ``ast`` (never executed).

For each .py file and notebook we record calls that mean training (``loss.backward()``,
``optimizer.step()``, ``Trainer(...)``/``SFTTrainer(...)``, ``trainer.train()``), inference or
serving (``LLM(...)``, ``pipeline(...)``, ``.generate(...)``, FastAPI/Flask/Gradio apps), model
ids (``from_pretrained("org/name")``, argparse defaults, ``MODEL_NAME = "..."``), quantization and
PEFT use, and explicit GPU counts (``tensor_parallel_size=2``). Only string constants in model
positions become model candidates: never bare numbers, paths or hashes.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from gpu_lol.analyzer import locations
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.repo_index import FileIndex

MAX_PY_FILES = 1500  # files fully analyzed, highest priority first (deterministic budget)
MAX_PY_BYTES = 16 << 20
MAX_AST_FILE_BYTES = 256 * 1024  # larger .py files are generated or vendored code, not scripts
# A file none of whose text matches this has nothing the visitor reads: it is not parsed.
_TRIGGERS = re.compile(
    r"backward|\.step\(|Trainer|TrainingArguments|Config\(|from_pretrained|from_single_file|from_quantized|"
    r"pipeline\(|LLM\(|\.generate\(|FastAPI|Flask|gradio|streamlit|uvicorn|add_argument|load_model|YOLO|"
    r"SentenceTransformer|CrossEncoder|BitsAndBytes|LoraConfig|get_peft_model|prepare_model_for|gradient_checkpoint|"
    r"tensor_parallel|Llama\(|\.fit\(|\.train\(|initialize\(|optim|[Mm][Oo][Dd][Ee][Ll]_?(name|id|path)|"
    r"MODEL|checkpoint|ckpt|devices|gpus|batch_size|max_seq|block_size|bits|load_in_|SAM\(|RTDETR|\.launch\(|"
    r"OpenAI|Anthropic|litellm|InferenceClient|ServerModel|ApiModel|Groq|Together|bedrock|vertexai|genai|completion")
_ENTRY_RE = re.compile(r"^if\s+__name__\s*==", re.M)

TRAINER_CLASSES = frozenset({
    "Trainer", "Seq2SeqTrainer", "SFTTrainer", "DPOTrainer", "ORPOTrainer", "KTOTrainer", "GRPOTrainer",
    "PPOTrainer", "RewardTrainer", "CPOTrainer", "RLOOTrainer", "OnlineDPOTrainer", "GKDTrainer",
    "IterativeSFTTrainer", "PRMTrainer", "XPOTrainer", "NashMDTrainer", "BCOTrainer", "DistillationTrainer",
})
TRAINING_CONFIG_CLASSES = frozenset({
    "TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig", "DPOConfig", "GRPOConfig", "ORPOConfig",
    "KTOConfig", "PPOConfig", "RewardConfig", "CPOConfig",
})
OPTIMIZER_CLASSES = frozenset({
    "Adam", "AdamW", "SGD", "Adafactor", "AdamW8bit", "PagedAdamW", "PagedAdamW8bit", "Lion", "Adagrad",
    "RMSprop", "LAMB", "FusedAdam", "DeepSpeedCPUAdam", "Muon",
})
SERVING_CALLS = frozenset({"FastAPI", "Flask", "Interface", "Blocks", "ChatInterface", "LitServer", "Quart"})
MODEL_VAR_RE = re.compile(
    r"^(?:base_|pretrained_|default_|hf_|llm_|policy_|reward_|ref_|teacher_|student_)?"
    r"(?:model|checkpoint|ckpt)(?:_?(?:name|id|path|name_or_path|repo|repo_id|type|checkpoint))?$", re.I)
MODEL_KWARGS = frozenset({"model", "model_name", "model_id", "model_name_or_path", "pretrained_model_name_or_path",
                          "base_model", "model_path", "checkpoint", "repo_id"})
BATCH_NAMES = frozenset({"micro_batch_size", "per_device_train_batch_size", "batch_size", "train_batch_size",
                         "device_batch_size", "per_gpu_train_batch_size"})
GPU_COUNT_NAMES = frozenset({"num_gpus", "n_gpus", "ngpus", "num_devices", "num_of_devices", "n_gpu",
                             "gpus_per_node", "nproc_per_node", "num_gpu"})
PER_DEVICE_BATCH = frozenset({"micro_batch_size", "per_device_train_batch_size", "device_batch_size",
                              "per_gpu_train_batch_size"})
SEQ_NAMES = frozenset({"cutoff_len", "max_seq_length", "max_seq_len", "seq_len", "block_size", "max_length",
                       "model_max_length", "context_length", "sequence_len"})
# Clients of hosted models (the model runs on someone else's servers, not on this machine's GPU).
HOSTED_CLIENTS = frozenset({
    "OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI", "Anthropic", "AsyncAnthropic", "AnthropicBedrock",
    "AnthropicVertex", "InferenceClient", "AsyncInferenceClient", "InferenceClientModel", "HfApiModel",
    "LiteLLMModel", "OpenAIServerModel", "AzureOpenAIServerModel", "AmazonBedrockServerModel", "OpenAIModel",
    "Together", "AsyncTogether", "Groq", "AsyncGroq", "ChatOpenAI", "AzureChatOpenAI", "ChatAnthropic", "ChatGroq",
    "ChatTogether", "ChatVertexAI", "ChatBedrock", "ChatBedrockConverse", "ChatGoogleGenerativeAI", "ChatMistralAI",
    "ChatCohere", "ChatFireworks", "ChatLiteLLM", "OpenAIEmbeddings", "AzureOpenAIEmbeddings", "GenerativeModel",
    "MistralClient", "Mistral", "Cohere", "ClientV2", "Fireworks", "HuggingFaceEndpoint", "HuggingFaceInferenceAPI",
    "ChatHuggingFace", "BedrockChat", "OpenAILike",
})
# Client names no local library uses: hosted even in a file that imports no SDK (a README example
# of a library that wraps one).
UNAMBIGUOUS_HOSTED = frozenset({
    "OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI", "Anthropic", "AsyncAnthropic", "InferenceClient",
    "AsyncInferenceClient", "InferenceClientModel", "HfApiModel", "LiteLLMModel", "OpenAIServerModel",
    "AzureOpenAIServerModel", "AmazonBedrockServerModel", "ChatOpenAI", "AzureChatOpenAI", "ChatAnthropic",
    "ChatGroq", "ChatVertexAI", "ChatBedrock", "ChatGoogleGenerativeAI", "ChatMistralAI", "HuggingFaceEndpoint",
})
# Module-level calls of hosted APIs: (receiver, name).
HOSTED_CALLS = frozenset({("litellm", "completion"), ("litellm", "acompletion"), ("litellm", "embedding"),
                          ("openai", "create"), ("openai.ChatCompletion", "create"), ("openai.Completion", "create"),
                          ("vertexai", "init"), ("genai", "configure"), ("genai", "Client"), ("replicate", "run")})
# Modules whose clients call hosted models; an ambiguous class name (``Mistral``, ``Together``) counts
# only in a file that imports one of them.
HOSTED_MODULES = frozenset({
    "openai", "anthropic", "litellm", "groq", "together", "cohere", "mistralai", "google", "vertexai", "boto3",
    "langchain_openai", "langchain_anthropic", "langchain_groq", "langchain_together", "langchain_google_vertexai",
    "langchain_google_genai", "langchain_aws", "langchain_mistralai", "langchain_cohere", "langchain_fireworks",
    "langchain_community", "langchain_huggingface", "huggingface_hub", "smolagents", "replicate", "fireworks",
    "llama_index", "dspy", "instructor", "autogen", "crewai", "agents",
})
# Keyword arguments that name the model a client talks to, and the callee names of clients/agents
# (not tokenizer helpers such as tiktoken's encoding_for_model).
_HOSTED_ID_KWARGS = ("model", "model_name", "model_id", "id", "llm_model", "deployment_name")
_CLIENT_NAME_RE = re.compile(r"(Client|Chat|LLM|Model|Agent|Completion|Provider)s?$|^(Chat|LLM|Agent)")
_LOCAL_URL_RE = re.compile(r"localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\]")
# Ids of models only served through an API (never weights to download).
HOSTED_MODEL_RE = re.compile(
    r"^(?:(?:openai|anthropic|azure|gemini|vertex_ai|bedrock|groq|together_ai|mistral)/)?"
    r"(?:gpt-(?:3\.5|4|5)|o[1-4](?:-|$)|chatgpt|text-davinci|davinci|text-embedding|dall-e|claude|gemini|"
    r"command-r|mistral-(?:large|medium|small)-latest|anthropic\.|amazon\.|meta\.llama)", re.I)


def is_hosted_model_id(value: str) -> bool:
    """An id that names a model only reachable through a hosted API (gpt-4o, claude-3-5-sonnet, gemini-pro)."""
    return bool(HOSTED_MODEL_RE.match(value.strip()))


_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)?$")


@dataclass
class FileSignals:
    file: str
    weight: float
    is_notebook: bool = False
    is_entry: bool = False  # has `if __name__ == "__main__"`, or top-level calls in a script
    training: list[Evidence] = field(default_factory=list)
    training_strength: float = 0.0
    inference: list[Evidence] = field(default_factory=list)
    inference_strength: float = 0.0
    serving: list[Evidence] = field(default_factory=list)
    loads_model: list[Evidence] = field(default_factory=list)
    model_ids: list[tuple[str, Evidence, float]] = field(default_factory=list)  # (id, ev, strength)
    quant4: list[Evidence] = field(default_factory=list)
    quant4_optin: list[tuple[str, Evidence]] = field(default_factory=list)  # (CLI flag, 4-bit load it guards)
    quant8: list[Evidence] = field(default_factory=list)
    quant_prequant: list[Evidence] = field(default_factory=list)  # GPTQ/AWQ/GGUF loading
    peft: list[Evidence] = field(default_factory=list)
    gpu_counts: list[tuple[int, Evidence]] = field(default_factory=list)
    batch: list[tuple[int, Evidence]] = field(default_factory=list)
    seq: list[tuple[int, Evidence]] = field(default_factory=list)
    grad_ckpt: list[Evidence] = field(default_factory=list)
    device_map: list[Evidence] = field(default_factory=list)
    frameworks: set[str] = field(default_factory=set)  # top-level imports
    hosted: list[Evidence] = field(default_factory=list)  # calls of hosted-model clients (OpenAI, Anthropic…)
    hosted_models: list[tuple[str, Evidence]] = field(default_factory=list)  # model ids sent to those clients
    hosted_classes: set[str] = field(default_factory=set)  # classes here that wrap a hosted client only
    called: set[str] = field(default_factory=set)  # names of everything called (for classes defined elsewhere)

    @property
    def local_model_use(self) -> bool:
        """Whether the file trains or runs a model on this machine (not through a hosted API)."""
        return bool(self.training_strength >= 1.5 or self.loads_model or self.quant4 or self.quant8
                    or (self.inference and self.inference_strength >= 0.7 and not self.hosted))

    @property
    def hosted_only(self) -> bool:
        """Calls hosted models and runs none locally."""
        return bool(self.hosted) and not self.local_model_use


def _optin_quant_flag(test: ast.AST) -> str | None:
    """The option name when an ``if`` tests a parsed CLI option about quantization (``args.quant``,
    ``opt.load_in_4bit``, ``args.bits == 4``)."""
    node = test.left if isinstance(test, ast.Compare) else test
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
            node.value.id in ("args", "opt", "opts", "options", "cfg", "config", "flags", "script_args") and \
            re.search(r"quant|4bit|int4|bits", node.attr, re.I):
        return node.attr
    if isinstance(node, ast.Name) and re.search(r"quant|4bit|int4", node.id, re.I):
        return node.id  # `if QUANT_ENABLED:` (a setting read from the environment)
    return None


def _call_name(func: ast.AST) -> tuple[str, str]:
    """(receiver text, attribute or function name) of a call target."""
    if isinstance(func, ast.Name):
        return "", func.id
    if isinstance(func, ast.Attribute):
        return _dotted(func.value), func.attr
    return "", ""


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return ""


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _const_int(node: ast.AST | None) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def _true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _known_model(value: str) -> bool:
    """The model table knows this id (not a size guessed from the name)."""
    from gpu_lol.sizing.models import lookup_model

    facts = lookup_model(value)
    return facts is not None and facts.source == "table"


def looks_like_model_id(value: str) -> bool:
    if not value or len(value) > 120 or " " in value or value.startswith((".", "/", "~", "http", "$", "{")):
        return False
    if value.count("/") > 1 or not _ID_RE.match(value):
        return False
    if re.search(r"\.(json|ya?ml|txt|csv|jsonl|parquet|py|sh|md|bin|safetensors|ckpt|pth)$", value, re.I):
        return False
    return any(c.isalpha() for c in value)


class _Visitor(ast.NodeVisitor):
    def __init__(self, sig: FileSignals, line_map=None):
        self.sig = sig
        self.line_map = line_map
        self.constants: dict[str, tuple[str, int]] = {}
        self.lines: list[str] = []
        self.class_stack: list[str] = []
        self.hosted_in_class: set[str] = set()
        self.local_in_class: set[str] = set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.class_stack.append(node.name)
        local_before = self.sig.local_model_use, len(self.sig.loads_model), len(self.sig.training)
        self.generic_visit(node)
        if (len(self.sig.loads_model), len(self.sig.training)) != local_before[1:]:
            self.local_in_class.add(node.name)
        self.class_stack.pop()

    def ev(self, node: ast.AST, text: str | None = None) -> Evidence:
        line = getattr(node, "lineno", None)
        snippet = text
        if snippet is None and line and line <= len(self.lines):
            snippet = self.lines[line - 1].strip()
        if self.line_map is not None and line:
            line = self.line_map[line - 1] if line <= len(self.line_map) else None
        return Evidence(self.sig.file, line, snippet or "")

    # ---- structure ------------------------------------------------------------------------
    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"):
            self.sig.is_entry = True
        flag = _optin_quant_flag(test)
        if flag:
            # `if args.quant: …load_in_4bit=True…`: a 4-bit load the user opts into with a flag; it
            # describes the main path only when its command passes that flag
            before = len(self.sig.quant4)
            self.visit(test)
            for stmt in node.body:
                self.visit(stmt)
            moved = self.sig.quant4[before:]
            del self.sig.quant4[before:]
            self.sig.quant4_optin.extend((flag, ev) for ev in moved)
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.sig.frameworks.add(alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            self.sig.frameworks.add(node.module.split(".")[0])

    def visit_Assign(self, node: ast.Assign) -> None:
        value = _const_str(node.value)
        if value is not None:
            for target in node.targets:
                name = target.id if isinstance(target, ast.Name) else (
                    target.attr if isinstance(target, ast.Attribute) else None)
                if name:
                    self.constants[name] = (value, node.lineno)
                    if MODEL_VAR_RE.match(name) and looks_like_model_id(value):
                        self.sig.model_ids.append((value, self.ev(node), 0.7))
        number = _const_int(node.value)
        if number and 1 < number <= 16:
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.lower() in GPU_COUNT_NAMES:
                    self.sig.gpu_counts.append((number, self.ev(node)))
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        name = node.target.id if isinstance(node.target, ast.Name) else None
        value = _const_str(node.value)
        if value is None and isinstance(node.value, ast.Call) and _call_name(node.value.func)[1] == "field":
            for kw in node.value.keywords:
                if kw.arg == "default":
                    value = _const_str(kw.value)
        if name and value and MODEL_VAR_RE.match(name) and looks_like_model_id(value):
            self.sig.model_ids.append((value, self.ev(node), 0.7))
        default = node.value
        if isinstance(default, ast.Call) and _call_name(default.func)[1] == "field":
            default = next((kw.value for kw in default.keywords if kw.arg == "default"), None)
        if name and name.lower() in ("bits", "quantization_bit", "load_in_4bit", "use_4bit", "q_lora") and (
                _const_int(default) == 4 or _true(default)):
            self.sig.quant4.append(self.ev(node))
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        args = node.args
        defaults = args.defaults
        positional = args.args[len(args.args) - len(defaults):] if defaults else []
        pairs = list(zip(positional, defaults)) + [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d]
        for arg, default in pairs:
            value = _const_str(default)
            if value and MODEL_VAR_RE.match(arg.arg) and looks_like_model_id(value):
                self.sig.model_ids.append((value, self.ev(default), 0.6))
            elif value and arg.arg == "name" and looks_like_model_id(value) and _known_model(value):
                # fire/typer-style CLIs: def main(name: str = "flux-dev", ...)
                self.sig.model_ids.append((value, self.ev(default), 0.5))
            number = _const_int(default)
            key = arg.arg.lower()
            if number and key in BATCH_NAMES:
                self._add_batch(key, number, default)
            elif number and key in SEQ_NAMES and number >= 64:
                self.sig.seq.append((number, self.ev(default)))
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    # ---- calls ----------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:  # noqa: C901 - one table of call shapes
        receiver, name = _call_name(node.func)
        sig = self.sig
        low_recv = receiver.lower()
        kwargs = {kw.arg: kw.value for kw in node.keywords if kw.arg}
        if name:
            sig.called.add(name)
        if self._hosted_call(node, receiver, name, kwargs):
            self.generic_visit(node)
            return
        if name == "backward" and not node.args[1:]:
            sig.training.append(self.ev(node))
            sig.training_strength += 2.0
        elif name == "step" and re.search(r"optim|opt$|scaler", low_recv):
            sig.training.append(self.ev(node))
            sig.training_strength += 1.5
        elif name in TRAINER_CLASSES:
            sig.training.append(self.ev(node))
            sig.training_strength += 2.5
        elif name in TRAINING_CONFIG_CLASSES:
            sig.training.append(self.ev(node))
            sig.training_strength += 1.0
        elif name == "train" and re.search(r"trainer|yolo|model", low_recv) and (
                "trainer" in low_recv or "data" in kwargs or "epochs" in kwargs):
            sig.training.append(self.ev(node))
            sig.training_strength += 2.0
        elif name == "fit" and ("trainer" in low_recv or {"epochs", "callbacks"} & set(kwargs)):
            sig.training.append(self.ev(node))
            sig.training_strength += 1.5
        elif name in OPTIMIZER_CLASSES and ("optim" in low_recv or "bnb" in low_recv
                                            or (receiver == "" and "torch" in sig.frameworks)):
            sig.training.append(self.ev(node))
            sig.training_strength += 0.8
        elif name == "initialize" and low_recv == "deepspeed":
            sig.training.append(self.ev(node))
            sig.training_strength += 1.5
        elif name == "LLM" and ("vllm" in sig.frameworks or "vllm" in low_recv):
            sig.inference.append(self.ev(node))
            sig.inference_strength += 2.5
            self._model_arg(node, kwargs, 0.9)
            q = _const_str(kwargs.get("quantization"))
            if q:
                sig.quant_prequant.append(self.ev(node))
        elif name == "pipeline" and ("transformers" in sig.frameworks or "transformers" in low_recv):
            sig.inference.append(self.ev(node))
            sig.inference_strength += 1.0
            sig.loads_model.append(self.ev(node))
            task = _const_str(node.args[0]) if node.args else _const_str(kwargs.get("task"))
            # a classifier or embedder beside the main model (a safety filter, a retriever) is auxiliary
            strength = 0.25 if task and re.search(r"classification|sentiment|feature-extraction|^ner$", task) else 0.8
            if "model" in kwargs:
                self._model_value(kwargs["model"], node, strength)
            elif len(node.args) >= 2:
                self._model_value(node.args[1], node, strength)
        elif name == "generate" and receiver and not low_recv.startswith(("self.gen", "random", "np")):
            sig.inference.append(self.ev(node))
            sig.inference_strength += 0.7
        elif name in SERVING_CALLS:
            sig.serving.append(self.ev(node))
        elif name == "run" and low_recv in ("uvicorn", "app", "demo", "iface", "server"):
            sig.serving.append(self.ev(node))
        elif name == "launch" and low_recv in ("demo", "iface", "interface", "app", "ui", "gr", "block", "blocks"):
            sig.serving.append(self.ev(node))
        elif (name == "from_pretrained" or name == "from_single_file") and re.search(
                r"tokeni[sz]er|processor|featureextractor|config$|scheduler|imageprocessor", low_recv.replace("_", "")):
            pass  # a tokenizer/processor/config is not the model
        elif name == "from_pretrained" or name == "from_single_file":
            sig.loads_model.append(self.ev(node))
            first = node.args[0] if node.args else next(
                (kwargs[k] for k in ("pretrained_model_name_or_path", "model_name", "model_id", "model", "repo_id")
                 if k in kwargs), None)
            if first is not None:
                self._model_value(first, node, 0.8)
            if _true(kwargs.get("load_in_4bit")):
                sig.quant4.append(self.ev(node))
            if _true(kwargs.get("load_in_8bit")):
                sig.quant8.append(self.ev(node))
            if isinstance(kwargs.get("device_map"), ast.Constant) and _const_str(kwargs["device_map"]) == "auto":
                sig.device_map.append(self.ev(node))
            if "gptq" in low_recv or "awq" in low_recv:
                sig.quant_prequant.append(self.ev(node))
        elif name in ("from_quantized", "AutoGPTQForCausalLM", "AutoAWQForCausalLM"):
            sig.quant_prequant.append(self.ev(node))
            sig.loads_model.append(self.ev(node))
        elif name == "Llama" and ("llama_cpp" in sig.frameworks or "llama_cpp" in low_recv):
            sig.quant_prequant.append(self.ev(node))
            sig.inference.append(self.ev(node))
            sig.inference_strength += 1.5
            sig.loads_model.append(self.ev(node))
        elif name == "BitsAndBytesConfig":
            # bnb_4bit_* settings only mean something for a 4-bit load, even when load_in_4bit
            # is an expression (load_in_4bit=args.bits == 4)
            if _true(kwargs.get("load_in_4bit")) or any(k.startswith("bnb_4bit") for k in kwargs):
                sig.quant4.append(self.ev(node))
            elif _true(kwargs.get("load_in_8bit")):
                sig.quant8.append(self.ev(node))
        elif name in ("LoraConfig", "get_peft_model", "PeftModel",
                      "LoHaConfig", "AdaLoraConfig", "IA3Config", "PeftConfig"):
            sig.peft.append(self.ev(node))
        elif name in ("SentenceTransformer", "CrossEncoder"):
            sig.loads_model.append(self.ev(node))
            if node.args:
                self._model_value(node.args[0], node, 0.8)
        elif name == "load_model" and low_recv == "whisper":
            sig.loads_model.append(self.ev(node))
            value = _const_str(node.args[0]) if node.args else None
            if value:
                sig.model_ids.append((f"openai/whisper-{value}", self.ev(node), 0.8))
        elif name in ("YOLO", "RTDETR", "SAM", "FastSAM") and ("ultralytics" in sig.frameworks):
            sig.loads_model.append(self.ev(node))
            value = _const_str(node.args[0]) if node.args else None
            if value:
                stem = value.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                sig.model_ids.append((stem, self.ev(node), 0.8))
        elif name in ("load", "load_state_dict") and low_recv in ("torch",):
            sig.loads_model.append(self.ev(node))
        elif name == "load" and low_recv == "torch.hub":
            # torch.hub.load("owner/repo", "entry"): downloads a pretrained model to run
            sig.loads_model.append(self.ev(node))
        elif _true(kwargs.get("pretrained")) and re.search(r"model|net|former|vit|resnet|huge|large|base|small",
                                                           name.lower()):
            # a model builder asked for its released weights (imagebind_huge(pretrained=True)):
            # the code runs a pretrained model rather than one it trains from scratch
            sig.loads_model.append(self.ev(node))
        elif name in ("load_pretrained_model", "load_model", "load_checkpoint", "from_checkpoint",
                      "load_from_checkpoint", "build_model", "create_model", "load_state_dict_from_url"):
            sig.loads_model.append(self.ev(node))
        elif name in ("gradient_checkpointing_enable", "prepare_model_for_kbit_training"):
            sig.grad_ckpt.append(self.ev(node))
            if name == "prepare_model_for_kbit_training":
                sig.peft.append(self.ev(node))
        elif name == "add_argument" and node.args:
            self._argparse(node, kwargs)
        for key in ("per_device_train_batch_size", "batch_size", "train_batch_size", "micro_batch_size"):
            n = _const_int(kwargs.get(key))
            if n:
                self._add_batch(key, n, node)
        for key in ("max_seq_length", "max_length", "max_seq_len", "block_size", "model_max_length", "max_model_len"):
            n = _const_int(kwargs.get(key))
            if n and n >= 64:
                sig.seq.append((n, self.ev(node)))
        for key in ("gradient_checkpointing", "use_gradient_checkpointing"):
            value = kwargs.get(key)
            if _true(value) or (_const_str(value) or "").lower() in ("unsloth", "true"):
                sig.grad_ckpt.append(self.ev(node))
        if name == "from_pretrained" and _true(kwargs.get("load_in_4bit")) and "fastlanguagemodel" in low_recv.replace("_", ""):
            sig.peft.append(self.ev(node))  # Unsloth FastLanguageModel: 4-bit base for LoRA
        for key in ("gpus", "num_gpus", "n_gpus", "tensor_parallel_size", "tp_size"):
            n = _const_int(kwargs.get(key))
            if n and 1 < n <= 16:
                sig.gpu_counts.append((n, self.ev(node)))
        n = _const_int(kwargs.get("devices"))
        if n and 1 < n <= 16 and name in ("Trainer", "Fabric"):
            sig.gpu_counts.append((n, self.ev(node)))
        self.generic_visit(node)

    def _hosted_call(self, node: ast.Call, receiver: str, name: str, kwargs: dict) -> bool:
        """A hosted-model client or call: recorded, and its model id is not a local model."""
        sig = self.sig
        imports_hosted = bool(sig.frameworks & HOSTED_MODULES)
        hosted = False
        if name in UNAMBIGUOUS_HOSTED or name in HOSTED_CLIENTS and (
                imports_hosted or receiver.split(".")[0] in HOSTED_MODULES):
            hosted = True
        elif (receiver, name) in HOSTED_CALLS or (name in ("completion", "acompletion") and "litellm" in sig.frameworks
                                                  and receiver == ""):
            hosted = True
        elif name == "client" and receiver == "boto3" and "bedrock" in (_const_str(node.args[0]) if node.args else
                                                                        _const_str(kwargs.get("service_name")) or ""):
            hosted = True
        elif name == "create" and re.search(r"(chat\.)?completions$|messages$|responses$", receiver) and imports_hosted:
            hosted = True
        elif _CLIENT_NAME_RE.search(name) and any(
                is_hosted_model_id(self._const_or_constant(kwargs[k]) or "") for k in _HOSTED_ID_KWARGS if k in kwargs):
            # a client constructed with a model only an API serves (OpenAIChatCompletionClient(model="gpt-4.1"),
            # OpenAIChat(id="gpt-4o")): whatever library wraps it, no weights of that model exist to run here
            hosted = True
        if not hosted:
            return False
        base = next((self._const_or_constant(kwargs[k]) or "" for k in ("base_url", "api_base", "openai_api_base",
                                                                       "endpoint_url") if k in kwargs), "")
        if base and _LOCAL_URL_RE.search(base):
            return False  # a client of a server this machine runs (vLLM, TGI, Ollama): not hosted
        sig.hosted.append(self.ev(node))
        if self.class_stack:
            self.hosted_in_class.add(self.class_stack[-1])
        for key in ("model", "model_id", "model_name", "repo_id", "deployment_name", "azure_deployment"):
            if key in kwargs:
                value = self._const_or_constant(kwargs[key])
                if value:
                    sig.hosted_models.append((value, self.ev(node)))
        if node.args and name in HOSTED_CLIENTS:
            value = self._const_or_constant(node.args[0])
            if value and looks_like_model_id(value):
                sig.hosted_models.append((value, self.ev(node)))
        return True

    def _const_or_constant(self, value_node: ast.AST) -> str | None:
        value = _const_str(value_node)
        if value is None and isinstance(value_node, ast.Name) and value_node.id in self.constants:
            value = self.constants[value_node.id][0]
        return value

    def _add_batch(self, key: str, number: int, node: ast.AST) -> None:
        """Per-device batch sizes go first: a global batch_size is split over accumulation steps."""
        item = (number, self.ev(node))
        if key in PER_DEVICE_BATCH:
            self.sig.batch.insert(0, item)
        else:
            self.sig.batch.append(item)

    def _model_arg(self, node: ast.Call, kwargs: dict, strength: float) -> None:
        target = kwargs.get("model") or (node.args[0] if node.args else None)
        if target is not None:
            self._model_value(target, node, strength)

    def _model_value(self, value_node: ast.AST, call: ast.Call, strength: float) -> None:
        value = _const_str(value_node)
        if value is None and isinstance(value_node, ast.Name) and value_node.id in self.constants:
            value = self.constants[value_node.id][0]
        if value and looks_like_model_id(value):
            self.sig.model_ids.append((value, self.ev(call), strength))

    def _argparse(self, node: ast.Call, kwargs: dict) -> None:
        flags = [_const_str(a) for a in node.args]
        keys = {f.lstrip("-").replace("-", "_").lower() for f in flags if f}
        default = kwargs.get("default")
        value = _const_str(default)
        if value and any(MODEL_VAR_RE.match(k) for k in keys) and looks_like_model_id(value):
            self.sig.model_ids.append((value, self.ev(node), 0.75))
        n = _const_int(default)
        if n:
            batch_keys = keys & {"per_device_train_batch_size", "batch_size", "train_batch_size", "micro_batch_size",
                                 "device_batch_size"}
            if batch_keys:
                self._add_batch(sorted(batch_keys)[0], n, node)
            if keys & {"max_seq_length", "max_length", "block_size", "seq_len", "max_seq_len", "cutoff_len",
                       "model_max_length", "context_length"} and n >= 64:
                self.sig.seq.append((n, self.ev(node)))
            if keys & {"num_gpus", "n_gpus", "gpus", "nproc_per_node", "tensor_parallel_size", "tp"} and 1 < n <= 16:
                self.sig.gpu_counts.append((n, self.ev(node)))
        if _true(default) and keys & {"load_in_4bit", "use_4bit", "q_lora", "qlora"}:
            self.sig.quant4.append(self.ev(node))
        if _true(default) and keys & {"use_peft", "use_lora", "lora"}:
            self.sig.peft.append(self.ev(node))


def notebook_code(cells) -> tuple[str, list[int]]:
    """Code cells as one Python text (magics blanked by ``notebooks.python_source``, a cell that
    does not parse blanked whole) and, for each of its lines, the line in the ``.ipynb`` file."""
    from gpu_lol.analyzer.notebooks import python_source

    code_lines: list[str] = []
    file_line: list[int] = []
    for offset, code in cells:
        lines = python_source(code).split("\n")
        try:
            ast.parse("\n".join(lines))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            lines = [""] * len(lines)  # one broken cell must not hide the others
        code_lines.extend(lines)
        file_line.extend(offset + i + 1 for i in range(len(lines)))
    return "\n".join(code_lines), file_line


def analyze_source(rel: str, text: str, *, notebook: bool = False, line_map: list[int] | None = None
                   ) -> FileSignals | None:
    """Signals of one file's Python. A notebook's ``text`` is its cells' code (see
    :func:`notebook_code`) and ``line_map`` maps each code line to its line in the ``.ipynb``."""
    weight = locations.weight(rel)
    sig = FileSignals(file=rel, weight=weight, is_notebook=notebook)
    tree = _parse(text)
    if tree is None:
        return None
    visitor = _Visitor(sig, line_map)
    visitor.lines = text.splitlines()
    # imports first: a client class counts as hosted only in a file that imports a hosted SDK
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            sig.frameworks.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            sig.frameworks.add(node.module.split(".")[0])
    visitor.visit(tree)
    sig.hosted_classes = visitor.hosted_in_class - visitor.local_in_class
    if sig.hosted_models or sig.model_ids:
        # a model id sent to a hosted API, or one only an API serves, is not a model this machine runs
        hosted_ids = {value for value, _ in sig.hosted_models}
        sig.model_ids = [m for m in sig.model_ids if m[0] not in hosted_ids and not is_hosted_model_id(m[0])]
    if not notebook and not sig.is_entry:
        # a script with top-level calls (no main guard) is an entry point too
        sig.is_entry = any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) for n in tree.body) and \
            not rel.endswith("__init__.py")
    return sig


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # Tolerate the odd invalid line (Python 2 prints, templates): drop lines the parser
        # names, a few times, before giving up on the file.
        lines = text.splitlines()
        for _ in range(5):
            try:
                return ast.parse("\n".join(lines))
            except SyntaxError as exc:
                if not exc.lineno or exc.lineno > len(lines):
                    return None
                lines[exc.lineno - 1] = ""
            except (ValueError, RecursionError, MemoryError):
                return None
        return None


def collect(index: FileIndex, priority: list[str] = ()) -> list[FileSignals]:
    """Signals for every readable Python file and notebook, most relevant first, within a budget;
    ``priority`` files (the README's linked notebooks and the scripts it runs) are read first."""
    first = {rel: i for i, rel in enumerate(priority)}
    candidates = [f for f in index.files if f.suffix in (".py", ".ipynb")]
    candidates.sort(key=lambda f: (first.get(f.rel, len(first)), -locations.weight(f.rel), f.depth, f.rel))
    out: list[FileSignals] = []
    budget = MAX_PY_BYTES
    for f in candidates[:MAX_PY_FILES]:
        if f.size > budget:
            continue
        if locations.weight(f.rel) == 0.0 and f.suffix == ".py":
            continue  # tests/docs never decide anything; skip reading them
        text = index.text(f)
        if text is None:
            continue
        budget -= f.size
        if f.suffix == ".py" and (f.size > MAX_AST_FILE_BYTES or not _TRIGGERS.search(text)):
            # nothing the visitor reads; it may still be a script (counted for notebook-centricity)
            out.append(FileSignals(file=f.rel, weight=locations.weight(f.rel), is_entry=bool(_ENTRY_RE.search(text))))
            continue
        if f.suffix == ".ipynb":
            from gpu_lol.analyzer.notebooks import code_cells

            code, line_map = notebook_code(code_cells(index, f))
            sig = analyze_source(f.rel, code, notebook=True, line_map=line_map)
        else:
            sig = analyze_source(f.rel, text)
        if sig is not None:
            out.append(sig)
    return out
