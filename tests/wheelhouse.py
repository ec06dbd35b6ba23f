"""A local package index of tiny wheels built here (no network): each wheel is a zip holding
only its ``.dist-info`` (METADATA, WHEEL, RECORD), which is all a resolver reads."""

from __future__ import annotations

import hashlib
import base64
import io
import tarfile
import zipfile
from pathlib import Path


def write_wheel(folder: Path, name: str, version: str, requires: list[str] = (), tag: str = "py3-none-any",
                requires_python: str | None = None) -> Path:
    dist = f"{name.replace('-', '_')}-{version}"
    meta = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Requires-Dist: {r}" for r in requires]
    files = {
        f"{dist}.dist-info/METADATA": "\n".join(meta) + "\n",
        f"{dist}.dist-info/WHEEL": f"Wheel-Version: 1.0\nGenerator: gpu-lol-tests\nRoot-Is-Purelib: true\nTag: {tag}\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    out = folder / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return out


def write_sdist(folder: Path, name: str, version: str, metadata_version: str = "1.0") -> Path:
    """A source archive only (what flash-attn is on PyPI): no wheel to resolve from. Its
    setup.py fails if anything ever runs it; PKG-INFO 2.2+ is static metadata a resolver may read."""
    base = f"{name.replace('-', '_')}-{version}"
    out = folder / f"{base}.tar.gz"
    data = f"Metadata-Version: {metadata_version}\nName: {name}\nVersion: {version}\n".encode()
    setup = b"raise SystemExit('gpu-lol tests: this sdist must never be built')\n"
    with tarfile.open(out, "w:gz") as tf:
        for path, blob in ((f"{base}/PKG-INFO", data), (f"{base}/setup.py", setup)):
            info = tarfile.TarInfo(path)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return out


def _compiled(folder: Path, name: str, version: str, cps: list[str], requires: list[str] = ()) -> None:
    for cp in cps:
        write_wheel(folder, name, version, list(requires), tag=f"{cp}-{cp}-manylinux_2_17_x86_64")


def build(folder: Path) -> Path:
    """The wheelhouse the resolver tests use: real project names with the wheel tags those
    projects really publish for the versions the issue's repos pin (only the tags matter to a
    resolver), plus a few made-up ones (alpha/beta/gamma) for plain conflicts."""
    folder.mkdir(parents=True, exist_ok=True)
    write_wheel(folder, "alpha", "1.0", ["beta>=1.5"])
    write_wheel(folder, "beta", "1.0")
    write_wheel(folder, "beta", "2.0")
    write_wheel(folder, "gamma", "3.1", ["beta<2"])
    # scikit-learn 1.2.2 and sentencepiece 0.1.99 have no cp312 wheels (artidoro/qlora)
    _compiled(folder, "scikit-learn", "1.2.2", ["cp310", "cp311"], ["numpy>=1.17.3", "joblib>=1.1.1"])
    _compiled(folder, "sentencepiece", "0.1.99", ["cp38", "cp310", "cp311"])
    _compiled(folder, "numpy", "1.19.2", ["cp38"])  # CompVis/stable-diffusion's pin
    _compiled(folder, "numpy", "1.26.4", ["cp310", "cp311", "cp312"])
    write_wheel(folder, "joblib", "1.4.2")
    # torch: the versions the table images ship (the nvidia/triton wheels come with them)
    _compiled(folder, "torch", "1.11.0", ["cp38", "cp310"], ["typing-extensions"])
    for version, cublas in (("2.6.0", "12.4.5.8"), ("2.9.1", "12.8.4.1")):
        write_wheel(folder, "torch", version, [f"nvidia-cublas-cu12=={cublas}", "triton", "typing-extensions"],
                    tag="cp310.cp311.cp312-none-manylinux_2_28_x86_64")
        write_wheel(folder, "nvidia-cublas-cu12", cublas)
    write_wheel(folder, "triton", "3.2.0")
    write_wheel(folder, "typing-extensions", "4.12.2")
    write_wheel(folder, "transformers", "4.46.0", ["numpy>=1.17", "tokenizers>=0.20"])
    _compiled(folder, "tokenizers", "0.20.3", ["cp38", "cp310", "cp311", "cp312"])
    write_wheel(folder, "peft", "0.11.1", ["torch>=1.13", "transformers"])
    write_wheel(folder, "accelerate", "1.0.1", ["torch>=1.10", "numpy"])
    write_wheel(folder, "fire", "0.7.0")
    write_wheel(folder, "einops", "0.8.0")
    write_wheel(folder, "gradio", "4.44.1")
    write_wheel(folder, "trl", "0.12.0", ["transformers", "accelerate"])
    write_wheel(folder, "datasets", "3.1.0")
    # no wheel at all, like flash-attn on PyPI: built on the machine, never here
    write_sdist(folder, "flash-attn", "2.7.4.post1")
    # a dependency with no wheel at all, like wandb 0.15's pathtools (static PKG-INFO: read, not built)
    write_wheel(folder, "wandb", "0.15.3", ["pathtools"])
    write_sdist(folder, "pathtools", "0.1.2", metadata_version="2.2")
    # only for other platforms
    write_wheel(folder, "winonly", "1.0", tag="cp312-cp312-win_amd64")
    return folder
