"""RunPod pod templates over RunPod's GraphQL API (read-only; never creates or starts anything).

SkyPilot launches the pods; a template only tells us which image to ask for. An image that
RunPod hosts already have cached boots in seconds, so when one of the user's templates runs
the same torch/CUDA as the spec, ``up`` uses its image.

The API key comes from ``RUNPOD_API_KEY`` or SkyPilot's RunPod config (``~/.runpod/config.toml``)
and is sent only in the ``Authorization`` header, never in a URL or a message.
``GPU_LOL_RUNPOD_API_URL`` points the client somewhere else (tests use a local server).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpu_lol.errors import OperationError

DEFAULT_API_URL = "https://api.runpod.io/graphql"
API_URL_ENV = "GPU_LOL_RUNPOD_API_URL"
PATTERN_ENV = "GPU_LOL_TEMPLATE_PATTERN"
DEFAULT_TIMEOUT_S = 10.0

TEMPLATES_QUERY = """query GpuLolPodTemplates {
  myself {
    podTemplates {
      id
      name
      imageName
      isPublic
      isRunpod
      isServerless
      containerDiskInGb
      volumeInGb
      ports
    }
  }
}"""


class RunPodApiError(OperationError):
    """The RunPod API could not answer the question (auth, network, malformed answer)."""


@dataclass
class Template:
    id: str
    name: str
    image: str
    is_public: bool = False
    is_runpod: bool = False
    is_serverless: bool = False
    container_disk_gb: int | None = None
    volume_gb: int | None = None
    ports: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TemplateChoice:
    template: Template
    reason: str


@dataclass
class TemplateLookup:
    """Templates for the plan, or why there are none (a one-line warning, never silent)."""

    templates: list[Template] = field(default_factory=list)
    warning: str | None = None
    has_key: bool = False
    error: "RunPodApiError | None" = None  # why the lookup failed (``--template NAME`` reports it)


def api_url() -> str:
    return os.environ.get(API_URL_ENV) or DEFAULT_API_URL


def api_key() -> str | None:
    """``RUNPOD_API_KEY``, else ``api_key`` of the default profile in ``~/.runpod/config.toml``."""
    key = os.environ.get("RUNPOD_API_KEY", "").strip()
    if key:
        return key
    path = Path.home() / ".runpod" / "config.toml"
    if not path.is_file():
        return None
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    profile = data.get("default") if isinstance(data, dict) else None
    value = profile.get("api_key") if isinstance(profile, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _user_agent() -> str:
    from gpu_lol import __version__

    return f"gpu-lol/{__version__} (+https://github.com/gpu-lol/gpu-lol)"


def list_templates(*, key: str | None = None, url: str | None = None,
                   timeout: float = DEFAULT_TIMEOUT_S) -> list[Template]:
    """The user's pod templates (serverless ones left out). Raises :class:`RunPodApiError`."""
    import httpx

    key = key or api_key()
    if not key:
        raise RunPodApiError("no RunPod API key",
                             "set RUNPOD_API_KEY or add api_key to ~/.runpod/config.toml (`runpod config`)")
    url = url or api_url()
    headers = {"Authorization": f"Bearer {key}", "User-Agent": _user_agent(),
               "Content-Type": "application/json", "Accept": "application/json"}
    try:
        response = httpx.post(url, json={"query": TEMPLATES_QUERY}, headers=headers,
                              timeout=httpx.Timeout(timeout), follow_redirects=False)
    except httpx.TimeoutException:
        raise RunPodApiError(f"the RunPod API did not answer within {timeout:g} s",
                             "try again, or pass --template with an image you know") from None
    except httpx.HTTPError as exc:
        raise RunPodApiError(f"cannot reach the RunPod API ({type(exc).__name__})",
                             "check your network") from None
    if response.status_code in (401, 403):
        raise RunPodApiError(f"RunPod rejected the API key (HTTP {response.status_code})",
                             "create a key with read access at https://www.runpod.io/console/user/settings")
    if response.status_code != 200:
        raise RunPodApiError(f"the RunPod API answered HTTP {response.status_code}", "try again later")
    try:
        body = response.json()
    except ValueError:
        raise RunPodApiError("the RunPod API answered with something that is not JSON",
                             "try again later; a proxy may be in the way") from None
    return _parse_templates(body)


def _parse_templates(body: Any) -> list[Template]:
    if not isinstance(body, dict):
        raise RunPodApiError("the RunPod API answered in an unexpected shape")
    errors = body.get("errors")
    if errors:
        first = errors[0] if isinstance(errors, list) and errors else errors
        message = first.get("message") if isinstance(first, dict) else str(first)
        text = str(message or "unknown error").splitlines()[0][:200]
        if re.search(r"unauthori[sz]ed|forbidden|api key", text, re.I):
            raise RunPodApiError(f"RunPod rejected the API key ({text})",
                                 "check RUNPOD_API_KEY or ~/.runpod/config.toml")
        raise RunPodApiError(f"the RunPod API returned an error: {text}")
    data = body.get("data")
    myself = data.get("myself") if isinstance(data, dict) else None
    rows = myself.get("podTemplates") if isinstance(myself, dict) else None
    if not isinstance(rows, list):
        raise RunPodApiError("the RunPod API answered in an unexpected shape (no podTemplates)")
    out = []
    for row in rows:
        if not isinstance(row, dict) or not row.get("id") or not row.get("imageName"):
            continue
        template = Template(
            id=str(row["id"]), name=str(row.get("name") or row["id"]), image=str(row["imageName"]),
            is_public=bool(row.get("isPublic")), is_runpod=bool(row.get("isRunpod")),
            is_serverless=bool(row.get("isServerless")),
            container_disk_gb=_int_or_none(row.get("containerDiskInGb")),
            volume_gb=_int_or_none(row.get("volumeInGb")),
            ports=str(row["ports"]) if row.get("ports") else None)
        if not template.is_serverless:
            out.append(template)
    return out


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def lookup(timeout: float = DEFAULT_TIMEOUT_S) -> TemplateLookup:
    """Templates for a launch plan: no key -> empty (not an error); a failure -> one warning."""
    key = api_key()
    if not key:
        return TemplateLookup(has_key=False)
    from gpu_lol.console import progress

    try:
        with progress("Looking up your RunPod templates..."):
            templates = list_templates(key=key, timeout=timeout)
        return TemplateLookup(templates=templates, has_key=True)
    except RunPodApiError as exc:
        return TemplateLookup(has_key=True, error=exc,
                              warning=f"RunPod templates unavailable ({exc.message}); "
                                      "using the spec's image")


def filter_templates(templates: list[Template], text: str | None) -> list[Template]:
    """Templates whose name, image or id contains ``text`` (case-insensitive) or match it as a glob."""
    if not text:
        return list(templates)
    needle = text.lower()
    out = []
    for t in templates:
        fields = (t.name.lower(), t.image.lower(), t.id.lower())
        if any(needle in f for f in fields) or any(fnmatch.fnmatchcase(f, needle) for f in fields):
            out.append(t)
    return out


def find_template(templates: list[Template], name_or_id: str) -> Template | None:
    """Exact id, then exact name, then case-insensitive name."""
    for t in templates:
        if t.id == name_or_id:
            return t
    for t in templates:
        if t.name == name_or_id:
            return t
    lowered = name_or_id.lower()
    matches = [t for t in templates if t.name.lower() == lowered]
    return matches[0] if len(matches) == 1 else None


_CU_RE = re.compile(r"(?:^|[-_.])cu(?:da)?(\d{3,4})(?:$|[-_.])")
_CUDA_RE = re.compile(r"cuda[-_]?(\d{2})\.(\d)")
_TORCH_RE = re.compile(r"torch[-_]?(\d[\d.]*\d|\d)")
_LEADING_VERSION_RE = re.compile(r"^(\d+\.\d+(?:\.\d+)?)(?:$|[-_])")


def image_versions(image: str) -> tuple[str | None, str | None]:
    """(torch, cuda) an image tag names, as digit strings: ``"291"``, ``"12.9"``; None if unknown.

    Handles RunPod's current tags (``runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204``), its old
    ones (``runpod/pytorch:2.1.0-py3.10-cuda12.1.1-devel-ubuntu22.04``) and the official
    ``pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime``.
    """
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    tag = tag.lower()
    torch = cuda = None
    match = _TORCH_RE.search(tag)
    if match:
        torch = match.group(1).replace(".", "")
    elif "pytorch" in repo.lower():
        lead = _LEADING_VERSION_RE.match(tag)
        if lead and not tag.startswith(("0.", "1.0.")):
            torch = lead.group(1).replace(".", "")
    match = _CU_RE.search(tag)
    if match:
        digits = match.group(1)
        cuda = f"{int(digits[:2])}.{digits[2]}"
    else:
        match = _CUDA_RE.search(tag)
        if match:
            cuda = f"{int(match.group(1))}.{match.group(2)}"
    return torch, cuda


def best_template(templates: list[Template], image: str, pattern: str | None = None) -> TemplateChoice | None:
    """The template to launch from instead of ``image``, or None.

    Only a template whose image runs the same torch and CUDA as ``image`` (or is the same image)
    qualifies: a different CUDA is how "no kernel image is available" happens. Among those, one
    whose name matches ``pattern`` (``GPU_LOL_TEMPLATE_PATTERN``, a glob or substring) wins, then
    the user's own templates over public ones.
    """
    pattern = pattern if pattern is not None else os.environ.get(PATTERN_ENV) or None
    torch, cuda = image_versions(image)
    candidates: list[tuple[tuple[int, int, int], Template, str]] = []
    for t in templates:
        if t.image == image:
            why = "same image"
        else:
            t_torch, t_cuda = image_versions(t.image)
            if not (torch and cuda and t_torch == torch and t_cuda == cuda):
                continue
            why = f"same torch ({dotted(torch)}) and CUDA ({cuda})"
        named = bool(pattern) and _name_matches(t.name, pattern)
        rank = (0 if named else 1, 0 if not t.is_public else 1, 0 if t.image == image else 1)
        candidates.append((rank, t, why + (f", name matches '{pattern}'" if named else "")))
    if not candidates:
        return None
    candidates.sort(key=lambda item: (item[0], item[1].name))
    _, template, why = candidates[0]
    return TemplateChoice(template=template, reason=why)


def _name_matches(name: str, pattern: str) -> bool:
    lowered, pat = name.lower(), pattern.lower()
    return pat in lowered or fnmatch.fnmatchcase(lowered, pat)


def dotted(digits: str) -> str:
    return ".".join(digits) if digits.isdigit() and len(digits) <= 3 else digits
