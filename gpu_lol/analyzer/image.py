"""The base image and Python version.

Precedence: a CUDA/PyTorch ``FROM`` in the repo's own Dockerfile wins; otherwise a RunPod PyTorch
image whose torch matches the repo's torch pin; TensorFlow-only and JAX-only repos get matching
images; cpu repos get ``python:<ver>-slim``. The image table is data (``data/images.yaml``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.data import load_yaml
from gpu_lol.requirements_text import name_of, specifier_of

_PY_RE = re.compile(r"^3\.\d{1,2}(\.\d+)?$")


@dataclass
class ImageChoice:
    image: str
    python_version: str | None
    provides: dict[str, str] = field(default_factory=dict)  # package -> version the image ships
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    python_exe: str | None = None  # the interpreter setup runs (`python3.10` in a plain CUDA image)
    bootstrap: list[str] = field(default_factory=list)  # setup commands that give it pip first
    system_packages: list[str] = field(default_factory=list)  # apt packages that bootstrap needs


def _table() -> dict:
    return load_yaml("images.yaml")


def is_gpu_image(image: str) -> bool:
    low = image.lower()
    return any(fnmatch.fnmatchcase(low, pat if "*" in pat else f"*{pat}*") for pat in _table()["gpu_image_patterns"])


def _pin(requirements: list, name: str) -> tuple[SpecifierSet | None, Evidence | None]:
    """The first requirement for ``name`` that pins a version (a bare ``torch`` in the
    requirements does not hide ``torch==2.6.0`` from an extra the README installs)."""
    first: tuple[SpecifierSet | None, Evidence | None] = (None, None)
    for req in requirements:
        if name_of(req.text) == name:
            try:
                found = SpecifierSet(specifier_of(req.text)), req.evidence
            except InvalidSpecifier:
                found = None, req.evidence
            if found[0] is not None and str(found[0]):
                return found
            if first == (None, None):
                first = found
    return first


def _satisfies(spec: SpecifierSet | None, version: str) -> bool:
    if spec is None or not str(spec):
        return True
    try:
        return spec.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def python_version_from(versions: list[tuple[str, Evidence]], image_python: str | None) -> tuple[str | None, list[str], list[str]]:
    """(python version, reasons, warnings) from the repo's statements and the image's Python."""
    reasons: list[str] = []
    warnings: list[str] = []
    exact = [(v, ev) for v, ev in versions if _PY_RE.match(v.strip())]
    specs = [(v, ev) for v, ev in versions if not _PY_RE.match(v.strip())]
    if exact:
        version, ev = exact[0]
        version = ".".join(version.strip().split(".")[:2])
        reasons.append(f"Python {version} ({ev.cite()})")
        if image_python and version != image_python:
            warnings.append(f"the repo asks for Python {version} ({ev.cite()}) but the image's default is "
                            f"{image_python}; set base_image in .gpu-lol.yaml if that matters")
        return version, reasons, warnings
    for value, ev in specs:
        try:
            spec = SpecifierSet(value.replace(" ", ""))
        except InvalidSpecifier:
            continue
        if image_python and not _satisfies(spec, image_python + ".0") and not _satisfies(spec, image_python):
            warnings.append(f"the repo requires Python {value} ({ev.cite()}) but the image's default is "
                            f"{image_python}")
            for candidate in ("3.12", "3.11", "3.10", "3.13", "3.9"):
                if _satisfies(spec, candidate + ".0"):
                    reasons.append(f"Python {candidate}: satisfies {value} ({ev.cite()})")
                    return candidate, reasons, warnings
        elif image_python:
            reasons.append(f"Python {image_python} (image default) satisfies {value} ({ev.cite()})")
            return image_python, reasons, warnings
        else:
            for candidate in ("3.12", "3.11", "3.10", "3.13", "3.9"):
                if _satisfies(spec, candidate + ".0"):
                    reasons.append(f"Python {candidate}: satisfies {value} ({ev.cite()})")
                    return candidate, reasons, warnings
    return image_python, reasons, warnings


def choose(workload: str, requirements: list, docker_images: list[tuple[str, Evidence]],
           python_versions: list[tuple[str, Evidence]], frameworks: set[str],
           system_packages: list[str] | tuple = ()) -> ImageChoice:
    table = _table()
    if workload == "cpu":
        for image, ev in docker_images:
            if image.lower().startswith("python:") and "$" not in image:
                m = re.match(r"python:(3\.\d+)", image.lower())
                return ImageChoice(image, m.group(1) if m else None,
                                   reasons=[f"image {image}: the repo's Dockerfile FROM ({ev.cite()})"])
        version, reasons, warnings = python_version_from(python_versions, None)
        version = version or table["default_python"]
        image = table["cpu_template"].format(python=version)
        return ImageChoice(image, version, reasons=[f"image {image}: no GPU framework, slim Python image"] + reasons,
                           warnings=warnings)
    for image, ev in docker_images:
        if "$" not in image and is_gpu_image(image):
            return _docker_choice(image, ev, python_versions, system_packages)
    torch_spec, torch_ev = _pin(requirements, "torch")
    if torch_spec is None or not str(torch_spec):
        vision_spec, vision_ev = _pin(requirements, "torchvision")
        if vision_spec is not None and str(vision_spec):
            mapped = _torch_from_torchvision(vision_spec, table["torchvision_to_torch"])
            if mapped is not None:
                torch_spec, torch_ev = mapped, vision_ev
    has_torch = "torch" in frameworks or torch_ev is not None
    if not has_torch and "tensorflow" in frameworks:
        tf_spec, tf_ev = _pin(requirements, "tensorflow")
        if tf_spec is None:
            tf_spec, tf_ev = _pin(requirements, "tensorflow-gpu")
        for row in table["tensorflow"]:
            if _satisfies(tf_spec, row["tensorflow"]):
                why = f"matches tensorflow{tf_spec} ({tf_ev.cite()})" if tf_ev and str(tf_spec) else "newest known"
                return _finish(row["image"], row["python"], {"tensorflow": row["tensorflow"]},
                               f"image {row['image']}: TensorFlow GPU image, {why}", python_versions)
        row = table["tensorflow"][0]
        return _finish(row["image"], row["python"], {"tensorflow": row["tensorflow"]},
                       f"image {row['image']}: no TensorFlow image matches tensorflow{tf_spec}; newest used "
                       "(the pinned tensorflow is installed on top)", python_versions, provides_ok=False)
    if not has_torch and "jax" in frameworks:
        row = table["jax"][0]
        return _finish(row["image"], row["python"], {},
                       f"image {row['image']}: CUDA {row['cuda']} base for JAX (jax[cuda12] comes from pip)",
                       python_versions)
    rows = table["pytorch"]
    fitting = [row for row in rows if _satisfies(torch_spec, row["torch"])]
    if fitting:
        row, py_note = _prefer_python(fitting, python_versions)
        if torch_ev is not None and str(torch_spec):
            why = f"torch {row['torch']} satisfies torch{torch_spec} ({torch_ev.cite()})"
        else:
            why = f"torch {row['torch']}, CUDA {row['cuda']}; the repo does not pin torch"
        choice = _finish(row["image"], row["python"], {"torch": row["torch"], "torchvision": row["torchvision"]},
                         f"image {row['image']}: {why}; {driver_note(row)}", python_versions)
        if py_note:
            choice.reasons.append(py_note)
        return choice
    row = rows[0]
    choice = _finish(row["image"], row["python"], {}, f"image {row['image']}: no image in the table ships "
                     f"torch{torch_spec} ({torch_ev.cite() if torch_ev else '?'}); the pinned torch is installed "
                     f"on top; {driver_note(row)}", python_versions)
    return choice


def driver_note(row: dict) -> str:
    driver = row.get("driver") or _table().get("cuda_driver", {}).get(str(row.get("cuda")))
    return f"CUDA {row.get('cuda')} needs NVIDIA driver {driver}+ on the host" if driver else f"CUDA {row.get('cuda')}"


def _python_wanted(python_versions: list[tuple[str, Evidence]]):
    """(test, text, evidence) for the repo's first Python statement, or None."""
    for value, ev in python_versions:
        value = value.strip()
        if _PY_RE.match(value):
            minor = ".".join(value.split(".")[:2])
            return (lambda v, m=minor: v == m), minor, ev
        try:
            spec = SpecifierSet(value.replace(" ", ""))
        except InvalidSpecifier:
            continue
        return (lambda v, s=spec: _satisfies(s, v + ".0") or _satisfies(s, v)), value, ev
    return None


def _prefer_python(rows: list[dict], python_versions: list[tuple[str, Evidence]]) -> tuple[dict, str | None]:
    """The first row whose Python the repo accepts (else the first row, with no note)."""
    wanted = _python_wanted(python_versions)
    if wanted is None:
        return rows[0], None
    test, text, ev = wanted
    for row in rows:
        if test(row["python"]):
            if row is not rows[0]:
                return row, f"Python {row['python']}: the image whose Python satisfies {text} ({ev.cite()})"
            return row, None
    return rows[0], None


def row_for(image: str) -> dict | None:
    """The table row of an image (any family), or None."""
    table = _table()
    image = image.removeprefix("docker:")
    for family in ("pytorch", "tensorflow", "jax"):
        for row in table.get(family, []):
            if row["image"] == image:
                return row
    return None


def python_of(image: str) -> str | None:
    """The Python an image runs: its table row, a python:X image, or a CUDA image's Ubuntu."""
    row = row_for(image)
    if row is not None:
        return str(row["python"])
    m = re.match(r"^(?:docker\.io/)?(?:library/)?python:(3\.\d+)", image)
    if m:
        return m.group(1)
    m = re.search(r"ubuntu-?(\d\d\.\d\d)", image)
    if m:
        return _table().get("ubuntu_python", {}).get(m.group(1))
    return None


def cuda_of(image: str) -> str | None:
    """The CUDA major.minor an image carries: its table row, or its tag
    (``nvidia/cuda:12.2.0-...``, ``...-cu1281-...``, ``...-cuda12.4-...``)."""
    row = row_for(image)
    if row is not None and row.get("cuda"):
        return str(row["cuda"])
    tag = image.rsplit(":", 1)[-1].lower() if ":" in image else ""
    m = re.search(r"(?:^|[-_])(?:cuda)?(\d{2})\.(\d)(?:\.\d+)?(?:[-_]|$)", tag) if image.lower().startswith(
        ("nvidia/cuda", "nvcr.io/nvidia/cuda")) else None
    m = m or re.search(r"cuda(\d{2})\.(\d)", tag) or re.search(r"cu(\d{2})(\d)\d?(?:[-_]|$)", tag)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def driver_needed(image: str) -> str | None:
    """``CUDA 12.4: needs NVIDIA driver 550+ on the host`` for an image, or None when unknown."""
    cuda = cuda_of(image)
    if not cuda:
        return None
    driver = _table().get("cuda_driver", {}).get(cuda)
    return f"CUDA {cuda}: needs NVIDIA driver {driver}+ on the host" if driver else f"CUDA {cuda}"


def has_nvcc(image: str) -> bool | None:
    """Whether the image has the CUDA compiler: ``-devel`` images and the table's PyTorch images
    (built on devel bases) do, ``-runtime``/``-base`` ones do not; None when unknown."""
    low = image.lower()
    if "devel" in low:
        return True
    if re.search(r"[-_:](runtime|base)([-_]|$)", low) or "cudnn-runtime" in low:
        return False
    row = row_for(image)
    if row is not None and row in _table()["pytorch"]:
        return True
    return None


def provides_of(image: str) -> dict[str, str]:
    row = row_for(image)
    if row is None:
        return {}
    return {k: str(row[k]) for k in ("torch", "torchvision", "tensorflow") if k in row}


def images_for_python(pythons: list[str], torch_specs: list[str]) -> list[dict]:
    """PyTorch table rows, in preference order, whose Python is one of ``pythons`` and whose
    torch satisfies every torch specifier the requirements give."""
    specs = []
    for text in torch_specs:
        try:
            specs.append(SpecifierSet(text))
        except InvalidSpecifier:
            return []
    out = []
    for py in pythons:
        for row in _table()["pytorch"]:
            if row["python"] == py and all(_satisfies(s, row["torch"]) for s in specs) and row not in out:
                out.append(row)
    return out


def _docker_choice(image: str, ev: Evidence, python_versions: list[tuple[str, Evidence]],
                   system_packages) -> ImageChoice:
    """The repo's Dockerfile CUDA image, with the Python its Dockerfile installs (``apt-get
    install python3.10``) or the one its Ubuntu ships, and pip bootstrapped the way the
    Dockerfile does it (get-pip) or with ensurepip."""
    reasons = [f"image {image}: CUDA base image from the repo's Dockerfile ({ev.cite()})"]
    warnings: list[str] = []
    installed = [p for p in system_packages if re.match(r"^python3\.\d+$", p)]
    own_python = row_for(image) is not None or image.lower().startswith(_PYTHON_IMAGES)
    if own_python:
        version = python_of(image)
        return ImageChoice(image, version, reasons=reasons + ([f"Python {version}: the image's"] if version else []),
                           warnings=warnings)
    if installed:
        exe = installed[0]
        version = exe[len("python"):]
        reasons.append(f"Python {version}: the Dockerfile installs {exe}")
    else:
        version = python_of(image)
        exe = "python3"
        if version:
            reasons.append(f"Python {version}: what the image's Ubuntu ships (python3)")
    wanted = _python_wanted(python_versions)
    if wanted is not None and version and not wanted[0](version):
        warnings.append(f"the repo asks for Python {wanted[1]} ({wanted[2].cite()}) but its Dockerfile image runs "
                        f"Python {version}")
    bootstrap = [f"command -v {exe} >/dev/null 2>&1 || {{ echo 'gpu-lol: {exe} is missing from the image' >&2; exit 1; }}",
                 f"{exe} -m pip --version >/dev/null 2>&1 || {exe} -m ensurepip --upgrade >/dev/null 2>&1 || "
                 f"curl -fsSL https://bootstrap.pypa.io/get-pip.py | {exe}"]
    needs = [exe, "curl", "ca-certificates"] + (["python3-pip"] if exe == "python3" else [])
    reasons.append(f"setup: gives {exe} pip first (ensurepip, else get-pip as the Dockerfile would)")
    return ImageChoice(image, version, reasons=reasons, warnings=warnings, python_exe=exe, bootstrap=bootstrap,
                       system_packages=[p for p in needs if p not in system_packages])


_PYTHON_IMAGES = ("runpod/", "python:", "pytorch/pytorch", "tensorflow/tensorflow", "nvcr.io/nvidia/pytorch")


def _finish(image: str, image_python: str, provides: dict[str, str], reason: str,
            python_versions: list[tuple[str, Evidence]], provides_ok: bool = True) -> ImageChoice:
    _version, reasons, warnings = python_version_from(python_versions, image_python)
    # the Python reported is the one the image runs; a different wish is a warning above
    return ImageChoice(image, image_python, provides if provides_ok else {}, [reason], warnings)


def _torch_from_torchvision(spec: SpecifierSet, table: dict[str, str]) -> SpecifierSet | None:
    for vision_minor, torch_minor in table.items():
        for patch in range(0, 4):
            if _satisfies(spec, f"{vision_minor}.{patch}"):
                return SpecifierSet(f"=={torch_minor}.*")
    return None
