"""conda ``environment.yml`` files, conda spec files and ``conda install`` arguments.

Conda package names become pip names where the pip package is the same software (``pytorch`` ->
``torch``, ``py-opencv`` -> ``opencv-python``, ``matplotlib-base`` -> ``matplotlib``); most
conda names are the pip name already. CUDA itself (``cudatoolkit``, ``pytorch-cuda``,
``cuda-*``, ``cudnn``, ``nccl``) comes with the GPU image, and system libraries and tools
(``ffmpeg``, ``libgcc-ng``, ``mkl``, compilers) have no pip equivalent: both are reported in
``conda_only`` with the spec as written, never installed by pip. ``python=3.10`` is the Python
version, ``pip`` itself is skipped, channels are ignored.

Version syntax: ``numpy=1.24`` (conda's fuzzy match) -> ``numpy==1.24.*``; ``numpy=1.24.3=py310h``
(exact with a build string) -> ``numpy==1.24.3``; ``numpy 1.24`` -> ``numpy==1.24.*``; ``>=``,
``<``, ``==``, ``!=`` and comma lists are kept; ``1.2|1.3`` cannot be written for pip and is
dropped to the bare name with a warning.

The ``pip:`` section of an environment file is read as requirement-file lines (``-r``
relative to the environment file, ``--extra-index-url`` recorded, ``-e .`` = the repo itself).
"""

from __future__ import annotations

import re

from gpu_lol.analyzer.collector import RUNTIME, Collector
from gpu_lol.analyzer.evidence import Evidence

# conda name -> pip name, where they differ but are the same software
CONDA_TO_PIP = {
    "pytorch": "torch", "pytorch-gpu": "torch", "pytorch-cpu": "torch",
    "tensorflow-gpu": "tensorflow", "tensorflow-base": "tensorflow",
    "py-opencv": "opencv-python", "opencv": "opencv-python",
    "matplotlib-base": "matplotlib", "pytables": "tables", "msgpack-python": "msgpack",
    "python-graphviz": "graphviz", "py-xgboost": "xgboost", "py-xgboost-gpu": "xgboost",
    "py-xgboost-cpu": "xgboost", "faiss": "faiss-cpu", "pyqt": "PyQt5", "ruamel_yaml": "ruamel.yaml",
    "cupy": "cupy-cuda12x", "pytorch-lightning": "pytorch-lightning", "cuda-python": "cuda-python",
    "libclang": "libclang", "librosa": "librosa", "libcst": "libcst", "lightgbm": "lightgbm",
    "pyyaml": "pyyaml", "jax": "jax", "jaxlib": "jaxlib", "tensorboard": "tensorboard",
    "nb_conda_kernels": None, "nb_conda": None,
}
# conda packages that are not Python packages pip can install (system libraries, tools, CUDA)
CONDA_ONLY = frozenset({
    "cudatoolkit", "cudatoolkit-dev", "cuda", "cuda-toolkit", "cuda-nvcc", "cuda-version",
    "pytorch-cuda", "cudnn", "nccl", "magma", "cutensor", "nvidia-apex", "cpuonly",
    "pytorch-mutex", "mkl", "mkl-include", "mkl-service", "mkl_fft", "mkl_random", "mkl-devel",
    "blas", "openblas", "intel-openmp", "llvm-openmp", "tbb", "tbb-devel", "ffmpeg", "sox",
    "git", "git-lfs", "nodejs", "make", "gcc", "gxx", "gfortran", "compilers", "cxx-compiler",
    "c-compiler", "fortran-compiler", "clang", "clangxx", "graphviz", "gdal", "proj", "geos",
    "hdf5", "openmpi", "mpich", "ucx", "openssl", "ca-certificates", "ncurses", "readline",
    "sqlite", "tk", "xz", "zlib", "zstd", "bzip2", "lz4-c", "expat", "icu", "krb5", "c-ares",
    "pcre", "pcre2", "glib", "dbus", "fontconfig", "freetype", "jpeg", "lcms2", "openjpeg",
    "giflib", "harfbuzz", "cairo", "pango", "pixman", "gettext", "gmp", "mpfr", "mpc", "nettle",
    "gnutls", "x264", "openh264", "lame", "aom", "dav1d", "svt-av1", "portaudio", "yaml",
    "tzdata", "arrow-cpp", "poppler", "tesseract", "imagemagick", "qt", "qt-main", "cmake-data",
    "pkg-config", "automake", "autoconf", "libtool", "patchelf", "ninja-base", "nsight-compute",
    "cuda-nsight", "rust", "go", "openjdk", "r-base", "perl", "wget", "curl", "unzip", "zip",
    "tar", "vim", "htop", "tmux", "jq", "cudf", "cuml", "cugraph", "rapids", "nvtx-c",
    "libjpeg-turbo", "freeglut", "glew", "mesalib", "eigen", "boost", "boost-cpp", "protobuf-c",
    "libprotobuf", "sentencepiece-spm",
})
_CONDA_ONLY_RE = re.compile(
    r"^(_.*|lib(?!rosa$|clang$|cst$|sass$|tmux$|usb1$).*|cuda-(?!python$).*|.*-cuda|cuda\d.*|"
    r"magma-.*|xorg-.*|gst-.*|gstreamer.*|binutils.*|.*_linux-(64|aarch64|ppc64le)|"
    r"r-.*|nvidia-(?!ml-py$).*|.*-devel|ld_impl.*|sysroot.*|kernel-headers.*)$")
SKIP = frozenset({"pip", "python", "setuptools", "wheel"})
_SPEC_RE = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(?P<rest>.*)$")
_VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.*+!_-]*$")


def parse(col: Collector, rel: str, target=RUNTIME) -> None:
    """An environment.yml: its dependencies and its ``pip:`` section."""
    import yaml

    key = ("conda:" + rel, target if isinstance(target, str) else tuple(target))
    if key in col.visited:
        return
    col.visited.add(key)
    text = col.index.text(rel)
    if text is None:
        col.warn(rel, "not readable as UTF-8 text; skipped")
        return
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{rel}:{mark.line + 1}" if mark is not None else rel
        problem = getattr(exc, "problem", None) or "invalid YAML"
        col.warn(where, f"invalid YAML ({problem}); skipped")
        return
    if not isinstance(root, yaml.MappingNode):
        return
    deps = _mapping_get(root, "dependencies")
    if not isinstance(deps, yaml.SequenceNode):
        return
    base_dir = rel.rsplit("/", 1)[0] if "/" in rel else ""
    from gpu_lol.analyzer import req_files

    for item in deps.value:
        if isinstance(item, yaml.ScalarNode):
            ev = Evidence(rel, item.start_mark.line + 1, str(item.value))
            add_spec(col, str(item.value), ev, "conda", target)
        elif isinstance(item, yaml.MappingNode):
            pip = _mapping_get(item, "pip")
            if not isinstance(pip, yaml.SequenceNode):
                continue
            for entry in pip.value:
                if not isinstance(entry, yaml.ScalarNode):
                    continue
                line = str(entry.value).strip()
                ev = Evidence(rel, entry.start_mark.line + 1, line)
                line = re.sub(r"(^|\s+)#.*$", "", line).strip()
                if line:
                    req_files.handle_line(col, line, ev, base_dir, target, "conda")


def _mapping_get(node, key: str):
    for k, v in node.value:
        if getattr(k, "value", None) == key:
            return v
    return None


def parse_spec_file(col: Collector, rel: str, target=RUNTIME) -> None:
    """A ``conda install --file`` / ``conda create --file`` spec list (one spec per line)."""
    text = col.index.text(rel)
    if text is None:
        return
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("@") or "://" in line:
            continue
        add_spec(col, line, Evidence(rel, number, line), "conda", target)


def add_spec(col: Collector, spec: str, ev: Evidence, source: str = "conda", target=RUNTIME) -> None:
    """One conda match spec: Python version, a pip requirement, or a conda-only package."""
    spec = spec.strip().strip("'\"")
    if "::" in spec:
        spec = spec.split("::", 1)[1]
    m = _SPEC_RE.match(spec)
    if not m:
        col.warn(ev, f"dropped conda spec '{spec}' (not a package spec)")
        return
    name, rest = m.group("name"), m.group("rest").strip()
    lname = name.lower()
    bracket = re.match(r"^\[(.*)\]$", rest)
    if bracket:
        vm = re.search(r"version\s*=\s*['\"]?([^'\",\]]+(?:,[^'\"\]]+)*)['\"]?", bracket.group(1))
        rest = vm.group(1) if vm else ""
    if lname == "python":
        version = rest.lstrip("=").split("=")[0].strip() if not rest.startswith((">", "<", "!", "~")) else rest
        if version and version != "*":
            col.add_python(version, ev)
        return
    if lname in SKIP:
        return
    if lname in CONDA_TO_PIP:
        pip_name = CONDA_TO_PIP[lname]
        if pip_name is None:
            return
    elif lname in CONDA_ONLY or _CONDA_ONLY_RE.match(lname):
        col.add_conda_only(spec, ev)
        return
    else:
        pip_name = name
    pin = conda_version_to_pip(rest)
    if pin is None:
        col.warn(ev, f"conda version '{rest}' of {name} has no pip equivalent; taken unpinned")
        pin = ""
    col.add_requirement(pip_name + pin, ev, source, target)


def conda_version_to_pip(rest: str) -> str | None:
    """The PEP 440 specifier for a conda version constraint ('' for none, None if impossible)."""
    rest = rest.strip()
    if not rest or rest == "*":
        return ""
    if "|" in rest:
        return None
    if rest[0] in "<>!~" or rest.startswith("=="):
        parts = []
        for part in rest.split(","):
            part = part.strip().replace(" ", "")
            pm = re.match(r"^(==|!=|<=|>=|<|>|~=|=)(.+)$", part)
            if not pm:
                return None
            op, ver = pm.groups()
            if op == "=":
                op, ver = "==", _fuzzy(ver)
            elif op not in ("==", "!="):
                ver = ver[:-2] if ver.endswith(".*") else ver
            if not _VERSION_RE.match(ver):
                return None
            parts.append(op + ver)
        return ",".join(parts)
    # `=1.2`, `=1.2=build`, `1.2`, `1.2 build`
    body = rest.lstrip("=").strip()
    pieces = re.split(r"[=\s]+", body)
    version = pieces[0]
    if not version or not _VERSION_RE.match(version):
        return None
    if len(pieces) > 1 and pieces[1]:
        return "==" + version  # a build string pins the exact version
    return "==" + _fuzzy(version)


def _fuzzy(version: str) -> str:
    """conda's ``=1.24`` matches 1.24.x: ``1.24.*``; a full ``=2.1.0`` is that release."""
    if version.endswith("*"):
        return version
    return version if version.count(".") >= 2 else version + ".*"
