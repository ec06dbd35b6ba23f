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


def _table() -> dict:
    return load_yaml("images.yaml")


def is_gpu_image(image: str) -> bool:
    low = image.lower()
    return any(fnmatch.fnmatchcase(low, pat if "*" in pat else f"*{pat}*") for pat in _table()["gpu_image_patterns"])


def _pin(requirements: list, name: str) -> tuple[SpecifierSet | None, Evidence | None]:
    for req in requirements:
        if name_of(req.text) == name:
            try:
                return SpecifierSet(specifier_of(req.text)), req.evidence
            except InvalidSpecifier:
                return None, req.evidence
    return None, None


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
           python_versions: list[tuple[str, Evidence]], frameworks: set[str]) -> ImageChoice:
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
            version, reasons, warnings = python_version_from(python_versions, None)
            return ImageChoice(image, version,
                               reasons=[f"image {image}: CUDA base image from the repo's Dockerfile ({ev.cite()})"] + reasons,
                               warnings=warnings)
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
    for row in rows:
        if _satisfies(torch_spec, row["torch"]):
            if torch_ev is not None and str(torch_spec):
                why = f"torch {row['torch']} satisfies torch{torch_spec} ({torch_ev.cite()})"
            else:
                why = f"newest torch ({row['torch']}); the repo does not pin torch"
            return _finish(row["image"], row["python"], {"torch": row["torch"], "torchvision": row["torchvision"]},
                           f"image {row['image']}: {why}", python_versions)
    row = rows[0]
    choice = _finish(row["image"], row["python"], {}, f"image {row['image']}: no RunPod image ships "
                     f"torch{torch_spec} ({torch_ev.cite() if torch_ev else '?'}); the pinned torch is installed "
                     "on top", python_versions)
    return choice


def _finish(image: str, image_python: str, provides: dict[str, str], reason: str,
            python_versions: list[tuple[str, Evidence]], provides_ok: bool = True) -> ImageChoice:
    version, reasons, warnings = python_version_from(python_versions, image_python)
    return ImageChoice(image, version or image_python, provides if provides_ok else {}, [reason] + reasons, warnings)


def _torch_from_torchvision(spec: SpecifierSet, table: dict[str, str]) -> SpecifierSet | None:
    for vision_minor, torch_minor in table.items():
        for patch in range(0, 4):
            if _satisfies(spec, f"{vision_minor}.{patch}"):
                return SpecifierSet(f"=={torch_minor}.*")
    return None
