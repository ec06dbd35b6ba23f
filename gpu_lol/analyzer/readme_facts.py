"""What a README says in prose about hardware: stated GPU memory needs and multi-GPU setups.

Only explicit statements count: "requires at least 10GB of VRAM", "around 12GB of GPU memory",
"trained on 8x A100 40GB", "8 GPUs (80GB of VRAM)". CPU RAM, disk space and single-GPU boasts
("65B on a single 48GB GPU") are not requirements of the main path and are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.launch_commands import readme_code_lines
from gpu_lol.repo_index import FileIndex

_NUM = r"(\d{1,3}(?:\.\d)?)"
_MEM_WORDS = r"(?:of\s+)?(?:vram|gpu\s+memory|gpu\s+ram|video\s+memory|graphics\s+memory|显存|gpu\s+vram)"
_NEED = r"(?:at\s+least|minimum(?:\s+of)?|minimal|min\.?|requires?|required|needs?|needed|around|about|approximately|approx\.?|more\s+than|over|~|≥|>=|>)"
VRAM_NEED_RES = [
    re.compile(_NEED + r"[^.\n]{0,40}?" + _NUM + r"\s*(?:gb|gib|g)\b\s*" + _MEM_WORDS, re.I),
    re.compile(_MEM_WORDS + r"[^.\n]{0,30}?" + _NEED + r"[^.\n]{0,12}?" + _NUM + r"\s*(?:gb|gib|g)\b", re.I),
    re.compile(r"gpu\s+with\s+" + _NEED + r"?\s*" + _NUM + r"\s*(?:gb|gib)\b", re.I),
    re.compile(_NEED + r"\s+(?:a\s+)?" + _NUM + r"\s*(?:gb|gib)\s+(?:gpu|graphics\s+card|card)\b", re.I),
    # "runs on a single 24 GB GPU", "fits on one 16GB card": the card the authors say is enough
    re.compile(r"\b(?:runs?|running|fits?|works?)\s+(?:\w+\s+){0,2}?on\s+(?:a|one|any|a\s+single|your)\s+"
               + _NUM + r"\s*(?:gb|gib)\s+(?:\w+\s+)?(?:gpus?|cards?|graphics\s+cards?)\b", re.I),
    # "If your GPU(s) have less than 80GB, ... you will OOM"
    re.compile(r"gpus?(?:\(s\))?\s+(?:has|have|with)\s+less\s+than\s+" + _NUM + r"\s*(?:gb|gib)\b"
               r"(?=[^.\n]{0,120}\b(?:oom|out\s+of\s+memory|run\s+out\s+of\s+vram))", re.I),
]
_NOT_GPU = re.compile(r"\b(cpu\s+memory|system\s+memory|system\s+ram|\bram\b(?!\s*\)?\s*of\s+vram)|disk|storage|free\s+space|内存|swap)\b", re.I)
# "112 GB of VRAM (sharded across GPUs)", "in total": a sum over GPUs, not a per-GPU need
_TOTAL = re.compile(r"\b(across|sharded|in\s+total|total|combined|aggregate|summed)\b", re.I)
_NAIVE = re.compile(r"\b(naive(ly)?|without\s+(sharding|lora|quantization))\b", re.I)
_CARDS = {"a100": 40, "h100": 80, "h200": 141, "b200": 180, "a6000": 48, "a40": 48, "l40s": 48, "l40": 48,
          "4090": 24, "3090": 24, "v100": 16, "a10g": 24, "a10": 24, "l4": 24, "t4": 16, "h800": 80, "a800": 80,
          "mi300x": 192}
HW_RES = [
    # 8x A100 40GB, 8 x H100s (80GB), 8XH100, 4×A100-80G
    re.compile(r"\b(\d{1,2})\s*[x×*]\s*(?:nvidia\s+)?(a100|h100|h200|b200|a6000|a40|l40s|l40|rtx\s*4090|rtx\s*3090|4090|3090|v100|a10g|a10|h800|a800)s?"
               r"(?:[\s\-(]*(\d{2,3})\s*g(?:b|ib)?\b)?", re.I),
    # 8 GPUs (80GB of VRAM), 8 GPUs with 80GB
    re.compile(r"\b(\d{1,2})\s+(?:nvidia\s+)?gpus?\s*(?:\(|with\s+|of\s+)(\d{2,3})\s*g(?:b|ib)", re.I),
    # 4 80GB A100s, 8 40GB A100 GPUs
    re.compile(r"\b(\d{1,2})\s+(\d{2,3})\s*g(?:b|ib)\s+(?:nvidia\s+)?(a100|h100|h200|a6000|a40|l40s|v100|h800|a800)s?\b", re.I),
    # 4 A100 80G GPUs, 8 H100 80GB GPUs
    re.compile(r"\b(\d{1,2})\s+(?:nvidia\s+)?(a100|h100|h200|a6000|a40|l40s|v100|h800|a800)[\s\-]+(\d{2,3})\s*g(?:b|ib)?\s+gpus\b", re.I),
]
# "requires 8x80GB": read only on a line that states a requirement (a bare "on 2x24GB GPUs" boasts)
REQUIRED_HW_RE = re.compile(r"\b(\d{1,2})\s*[x×]\s*(\d{2,3})\s*g(?:b|ib)\b", re.I)
# Sections that talk about other projects, not this one
_ASIDE_HEADING = re.compile(r"acknowledg|citation|cite|related|thanks|credits|license|references|news|updates|"
                            r"changelog|star\s+history|contributors|disclaimer", re.I)
# "314B parameters", "a 7 billion parameter model", "33B-parameter"
PARAMS_RE = re.compile(r"(?<![\w.])(\d{1,4}(?:\.\d{1,2})?)\s*(?:b|billion)[\s-]+param", re.I)
_ACTIVE = re.compile(r"\b(activ(?:e|ated)|per\s+token)\b", re.I)
# "designed to run on conventional laptops", "no GPU required", "does not require specialized hardware"
CPU_OK_RE = re.compile(
    r"(?:designed|meant|made|able|intended)\s+to\s+run\s+on\s+(?:a\s+|your\s+)?(?:conventional|regular|ordinary|"
    r"standard|normal|most|any)?\s*(?:laptops?|cpus?)\b|runs?\s+(?:fine\s+|well\s+|comfortably\s+)?on\s+(?:a|any|"
    r"your|most)\s+(?:\w+\s+)?(?:laptop|cpu)\b|does\s+not\s+require\s+(?:a\s+|any\s+)?(?:gpu|specialized\s+hardware)|"
    r"no\s+gpu\s+(?:is\s+)?(?:required|needed|necessary)|\bgpu\s+is\s+(?:not\s+required|optional|not\s+needed)", re.I)
# A README that presents the repo as a course, a book or a lecture series
COURSE_RE = re.compile(r"\b(course|lectures?|lessons?|syllabus|curriculum|chapters?|bootcamp|workshop|textbook|"
                       r"homework|class\s+notes|(?:week|unit|module)\s+\d+)\b", re.I)
# a requirement word just before the hardware ("requires 8x80GB", "you need 8 A100 80GB") or
# "... is required" just after it
_REQUIRE_BEFORE = re.compile(r"\b(requires?|required|requirements?:?|needs?|minimum(?:\s+of)?|at\s+least|"
                             r"recommend(?:ed)?|must\s+have|you'?ll\s+need)\b[^.;\n]{0,40}$", re.I)
_REQUIRE_AFTER = re.compile(r"^[^.;\n]{0,30}\b(?:is|are)\s+(?:required|needed|necessary)\b", re.I)


@dataclass
class TableRow:
    text: str  # the row's cells, lowercased
    gb: float
    phase: str | None  # "inference" | "training" | None: what the column's header says
    evidence: Evidence


@dataclass
class ReadmeFacts:
    vram_needs: list[tuple[float, Evidence]] = field(default_factory=list)
    hardware: list[tuple[int, float, Evidence]] = field(default_factory=list)  # (gpus, GB per GPU, ev)
    table_rows: list[TableRow] = field(default_factory=list)  # rows of Markdown tables with a VRAM column
    params: list[tuple[float, Evidence]] = field(default_factory=list)  # "314B parameters" (root README)
    required_hardware: list[tuple[int, float, Evidence]] = field(default_factory=list)  # "requires 8x80GB"
    cpu_statement: Evidence | None = None  # "runs on a laptop", "no GPU required"
    course: Evidence | None = None  # the README presents a course / book / lectures
    # (file, line) of required-hardware statements made for one phase ("Finetuning: 8x RTX 3090")
    required_phase: dict[tuple[str, int], str] = field(default_factory=dict)
    prose: list[tuple[str, int, str]] = field(default_factory=list)  # root README prose lines (not code, not asides)

    def named_size(self, model_name: str | None) -> tuple[float, Evidence] | None:
        """The size the root README's prose gives a model whose id carries none: `--from_pretrained
        cogagent-chat` and "CogAgent-18B has 11 billion visual parameters" → 18B. The id's leading
        name (letters and digits, at least four characters) must be followed by -<N>B in the prose."""
        if not model_name:
            return None
        stem = model_name.rstrip("/").rsplit("/", 1)[-1]
        m = re.match(r"[A-Za-z][A-Za-z0-9]{3,}", stem)
        if not m or m.group(0).lower() in _GENERIC_TOKENS or re.search(r"\d+(\.\d+)?[bm]\b", stem, re.I):
            return None
        rx = re.compile(rf"(?<![\w.]){re.escape(m.group(0))}[-_ ](\d{{1,4}}(?:\.\d{{1,2}})?)B\b", re.I)
        for rel, lineno, line in self.prose:
            hit = rx.search(line)
            if hit and 0.05 <= float(hit.group(1)) <= 3000:
                return float(hit.group(1)), Evidence(rel, lineno, line.strip())
        return None

    @property
    def stated_params_b(self) -> tuple[float, Evidence] | None:
        """The model size the root README states first (a release README leads with its model)."""
        return self.params[0] if self.params else None

    def table_need(self, model_name: str | None, method: str | None, workload: str) -> tuple[float, Evidence] | None:
        """A VRAM table's figure for this model (a row naming it) or, failing that, its precision."""
        phase = "training" if workload == "training" else "inference"
        rows = [r for r in self.table_rows if r.phase in (None, phase)]
        if not rows:
            return None
        tokens = _model_tokens(model_name or "")
        scored = [(len(tokens & set(re.split(r"[^a-z0-9.]+", row.text))), -i, row) for i, row in enumerate(rows)]
        best = max(scored, key=lambda item: item[:2])
        if best[0] > 0:
            return best[2].gb, best[2].evidence
        sixteen = ("fp16", "bf16", "16-bit", "无量化")
        precision = {"inference": sixteen, "full": sixteen, "lora": sixteen, "inference-int8": ("int8", "8-bit"),
                     "inference-int4": ("int4", "4-bit"), "qlora": ("int4", "4-bit", "qlora")}.get(method or "", ())
        for row in rows:
            if any(p in row.text for p in precision):
                return row.gb, row.evidence
        return None

    def vram_floor(self) -> tuple[float, Evidence] | None:
        """The smallest stated requirement: the cheapest documented path."""
        return min(self.vram_needs, key=lambda item: item[0]) if self.vram_needs else None

    @property
    def root_hardware(self) -> list[tuple[int, float, Evidence]]:
        """Hardware statements of the root README (the setup the authors say they ran)."""
        return [h for h in self.hardware if "/" not in h[2].file]

    def required_for(self, count: int) -> tuple[float, Evidence] | None:
        """The root README's stated hardware requirement for this GPU count ("requires 8x80GB")."""
        matches = [(gb, ev) for n, gb, ev in self.required_hardware if n == count and "/" not in ev.file]
        return matches[0] if matches else None

    def hardware_for(self, count: int) -> tuple[float, Evidence] | None:
        """The first statement for this GPU count: a README leads with its main setup."""
        matches = [(gb, ev) for n, gb, ev in self.hardware if n == count]
        return matches[0] if matches else None


def read(index: FileIndex) -> ReadmeFacts:
    """Stated needs from the root README; hardware setups from every README outside tests/docs
    (recipes often state theirs next to their config), root first."""
    from gpu_lol.analyzer import locations

    facts = ReadmeFacts()
    readmes = [f for f in index.files if f.name.lower().startswith("readme") and f.suffix in (".md", ".rst", "")
               and (f.depth == 0 or locations.weight(f.rel) > 0)]
    for f in readmes[:400]:
        text = index.text(f)
        if not text:
            continue
        root = f.depth == 0
        if root:
            _tables(facts, f.rel, text.splitlines())
        code = {n for n, _ in readme_code_lines(text)}
        course_hits: list[Evidence] = []
        aside = False
        ctx_phase: str | None = None  # the phase the current heading or "* Finetuning:" label is about
        for lineno, line in enumerate(text.splitlines(), 1):
            if lineno in code or len(line) > 2000:
                continue
            if line.lstrip().startswith("#"):
                aside = bool(_ASIDE_HEADING.search(line))
            if not root:
                _hardware(facts, f.rel, lineno, line)
                continue
            if not aside and len(facts.prose) < 3000:
                facts.prose.append((f.rel, lineno, line))
            for m in (PARAMS_RE.finditer(line) if not aside else ()):
                value = float(m.group(1))
                if 0.05 <= value <= 3000 and not _ACTIVE.search(line[m.end(): m.end() + 25]):
                    facts.params.append((value, Evidence(f.rel, lineno, line.strip())))
            if facts.cpu_statement is None and CPU_OK_RE.search(line) and not _NOT_GPU.search(line):
                facts.cpu_statement = Evidence(f.rel, lineno, line.strip())
            hits = len(COURSE_RE.findall(line))
            if hits and (lineno <= 12 and line.lstrip().startswith("#") or len(course_hits) < 8):
                course_hits.extend([Evidence(f.rel, lineno, line.strip())] * hits)
                if lineno <= 12 and line.lstrip().startswith("#"):
                    course_hits.extend([Evidence(f.rel, lineno, line.strip())] * 4)  # the title says so
            _hardware(facts, f.rel, lineno, line)
            label = _PHASE_LABEL.match(line)
            if line.lstrip().startswith("#") or label:
                ctx_phase = _phase_of(line)
            if not aside:
                before = len(facts.required_hardware)
                _required(facts, f.rel, lineno, line)
                phase = _phase_of(line) or ctx_phase
                if phase and len(facts.required_hardware) > before:
                    facts.required_phase[(f.rel, lineno)] = phase
            seen_line = False
            for rx in VRAM_NEED_RES:
                if seen_line:
                    break  # one statement per line, whichever pattern reads it first
                for m in rx.finditer(line):
                    window = line[max(0, m.start() - 30): m.end() + 30]
                    if _NOT_GPU.search(m.group(0)) or _TOTAL.search(line[m.end(): m.end() + 40]):
                        continue
                    value = float(next(g for g in m.groups() if g))
                    if 2 <= value <= 1000 and "per" not in window.lower()[:10] \
                            and not _NAIVE.search(line[max(0, m.start() - 60): m.start()]):
                        facts.vram_needs.append((value, Evidence(f.rel, lineno, line.strip())))
                        seen_line = True
                        break
        if root and len(course_hits) >= 5 and facts.course is None:
            facts.course = course_hits[0]
    return facts


_GENERIC_TOKENS = frozenset({"instruct", "chat", "hf", "base", "model", "it", "v1", "v2", "v3", "en", "the", "a"})
_VRAM_HEADER = re.compile(r"vram|gpu\s*mem|显存|memory", re.I)
_GB_CELL = re.compile(r"(\d{1,3}(?:\.\d{1,2})?)\s*(?:gb|gib|g)\b", re.I)


def _model_tokens(name: str) -> set[str]:
    """Distinctive tokens of a model id: 'openai/whisper-large-v3-turbo' -> {whisper, large, turbo}."""
    last = name.lower().rsplit("/", 1)[-1]
    return {t for t in re.split(r"[^a-z0-9.]+", last) if len(t) > 1 and t not in _GENERIC_TOKENS}


def _tables(facts: ReadmeFacts, rel: str, lines: list[str]) -> None:
    """Markdown tables whose header has a VRAM / GPU memory column."""
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith("|") or i + 1 >= len(lines) or not re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]):
            i += 1
            continue
        header = [c.strip() for c in lines[i].strip().strip("|").split("|")]
        columns = []
        for col, name in enumerate(header):
            if _VRAM_HEADER.search(name):
                low = name.lower()
                phase = "training" if re.search(r"train|fine-?tun|微调|训练", low) else (
                    "inference" if re.search(r"infer|推理|generat", low) else None)
                columns.append((col, phase))
        j = i + 2
        while j < len(lines) and lines[j].lstrip().startswith("|"):
            cells = [c.strip() for c in lines[j].strip().strip("|").split("|")]
            for col, phase in columns:
                if col < len(cells):
                    m = _GB_CELL.search(cells[col])
                    if m and 1 <= float(m.group(1)) <= 1000:
                        text = " ".join(c for k, c in enumerate(cells) if k != col).lower()
                        facts.table_rows.append(TableRow(text, float(m.group(1)), phase,
                                                         Evidence(rel, j + 1, lines[j].strip())))
            j += 1
        i = j


# A heading or a short label line ("* Model Inference:", "Finetuning:") that opens a phase's hardware.
_PHASE_LABEL = re.compile(r"^\s*(?:[*+-]\s+|\d+\.\s+)?\**[^:.]{2,40}:\**\s*$")
_TRAIN_WORDS = re.compile(r"fine-?tun|\btrain|pre-?train|\bsft\b|微调|训练", re.I)
_INFER_WORDS = re.compile(r"inferenc|\bdeploy|\bserv(?:e|ing)\b|\bdemo\b|推理|部署", re.I)


def _phase_of(line: str) -> str | None:
    train, infer = bool(_TRAIN_WORDS.search(line)), bool(_INFER_WORDS.search(line))
    if train != infer:
        return "training" if train else "inference"
    return None


def _required(facts: ReadmeFacts, rel: str, lineno: int, line: str) -> None:
    """Hardware the README states as required (not the setup the authors happened to use)."""
    for rx in [REQUIRED_HW_RE] + HW_RES:
        for m in rx.finditer(line):
            if not (_REQUIRE_BEFORE.search(line[max(0, m.start() - 60): m.start()])
                    or _REQUIRE_AFTER.search(line[m.end():])):
                continue
            groups = m.groups()
            count = int(groups[0])
            if len(groups) == 2:
                gb = float(groups[1])
            elif groups[1] and groups[1].isdigit():
                gb = float(groups[1])
            else:
                card = re.sub(r"\s|rtx", "", groups[1].lower())
                gb = float(groups[2]) if groups[2] else float(_CARDS.get(card, 0))
            if 2 <= count <= 64 and gb >= 8:
                item = (count, gb, Evidence(rel, lineno, line.strip()))
                facts.required_hardware.append(item)
                if item not in facts.hardware:
                    facts.hardware.append(item)
                return


def _hardware(facts: ReadmeFacts, rel: str, lineno: int, line: str) -> None:
    for rx in HW_RES:
        for m in rx.finditer(line):
            groups = m.groups()
            count = int(groups[0])
            if not 2 <= count <= 64:
                continue
            if len(groups) == 3 and groups[1] and groups[1].isdigit():  # count, size, card
                gb = float(groups[1])
            elif len(groups) == 3:
                card = re.sub(r"\s|rtx", "", groups[1].lower())
                gb = float(groups[2]) if groups[2] else float(_CARDS.get(card, 0))
            else:
                gb = float(groups[1])
            if gb >= 8:
                facts.hardware.append((count, gb, Evidence(rel, lineno, line.strip())))
