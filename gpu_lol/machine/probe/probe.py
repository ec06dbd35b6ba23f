"""gpu-lol probe: print one JSON object of facts about this machine's GPU/Python environment.

Runs anywhere with Python 3.6+ and nothing but the standard library: gpu-lol sends it over SSH to
``python3 -`` (or runs it locally) and parses the raw outputs it collects on its own side. Every
section is collected independently with its own time limit, so a broken driver or a hanging
import shows up as an error in that section, never as a missing report.

Input (optional): a line ``GPU_LOL_PROBE_INPUT = '<json>'`` placed before this script, with
``workdir`` (where to measure free disk and compare files) and ``files`` (``{relative path:
[size, sha256 or null]}``: the files the workdir should hold).
"""

import email.parser
import hashlib
import json
import os
import platform
import shutil
import site
import subprocess
import sys
import time

PROBE_VERSION = 1
NVIDIA_SMI_FIELDS = "name,memory.total,memory.used,memory.free,driver_version,compute_cap,count"
NVIDIA_SMI_FIELDS_OLD = "name,memory.total,memory.used,memory.free,driver_version,count"

TORCH_SNIPPET = r"""
import json, sys
print(sys.version.replace("\n", " "))
try:
    import torch
except BaseException as exc:
    text = str(exc).strip().splitlines()
    print("IMPORT-ERROR %s: %s" % (type(exc).__name__, text[0] if text else ""))
    sys.exit(0)
available = bool(torch.cuda.is_available())
name = torch.cuda.get_device_name(0) if available else "-"
memory = torch.cuda.get_device_properties(0).total_memory if available else 0
print(torch.__version__, torch.version.cuda, available, name, memory)
extra = {"device_count": 0, "names": [], "capabilities": [], "memory": [], "arch_list": []}
if available:
    count = torch.cuda.device_count()
    extra["device_count"] = count
    for i in range(count):
        props = torch.cuda.get_device_properties(i)
        extra["names"].append(props.name)
        extra["capabilities"].append("%d.%d" % (props.major, props.minor))
        extra["memory"].append(props.total_memory)
    try:
        extra["arch_list"] = list(torch.cuda.get_arch_list())
    except Exception:
        pass
print(json.dumps(extra))
"""


def run(argv, timeout, env=None):
    """Run a command; returns {"rc", "stdout", "stderr"} or {"error"}."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True, env=env)
    except OSError as exc:
        return {"error": "%s: %s" % (argv[0], exc.strerror or exc)}
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": "%s did not finish within %ss" % (os.path.basename(argv[0]), timeout)}
    return {"rc": proc.returncode, "stdout": out, "stderr": err[-4000:]}


def which(name, extra_dirs=()):
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return None


def read_text(path, limit=100000):
    try:
        with open(path, "r", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


def section_python():
    prefix = sys.prefix
    base = getattr(sys, "base_prefix", getattr(sys, "real_prefix", prefix))
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "prefix": prefix,
        "base_prefix": base,
        "in_venv": prefix != base,
    }


def section_system():
    out = {"hostname": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
           "os_release": read_text("/etc/os-release"), "boot_time": None, "pid1_start": None,
           "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    stat = read_text("/proc/stat") or ""
    for line in stat.splitlines():
        if line.startswith("btime "):
            out["boot_time"] = float(line.split()[1])
    pid1 = read_text("/proc/1/stat")
    if pid1 and out["boot_time"] is not None:
        try:
            fields = pid1.rsplit(")", 1)[1].split()
            ticks = os.sysconf("SC_CLK_TCK")
            out["pid1_start"] = out["boot_time"] + float(fields[19]) / ticks
        except (IndexError, ValueError, OSError):
            pass
    return out


def section_nvidia():
    smi = which("nvidia-smi", ("/usr/bin", "/usr/local/nvidia/bin", "/usr/lib/wsl/lib"))
    out = {"path": smi, "query": None, "banner": None}
    if not smi:
        return out
    query = run([smi, "--query-gpu=" + NVIDIA_SMI_FIELDS, "--format=csv"], 30)
    if query.get("rc") not in (0, None) and "compute_cap" in (query.get("stdout", "") + query.get("stderr", "")):
        query = run([smi, "--query-gpu=" + NVIDIA_SMI_FIELDS_OLD, "--format=csv"], 30)
    out["query"] = query
    out["banner"] = run([smi], 30)
    return out


def section_nvcc():
    nvcc = which("nvcc", ("/usr/local/cuda/bin",))
    if not nvcc:
        return {"path": None, "version": None}
    result = run([nvcc, "--version"], 20)
    result["path"] = nvcc
    return result


def section_torch():
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return run([sys.executable, "-c", TORCH_SNIPPET], 120, env=env)


def section_pip():
    env = dict(os.environ)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return run([sys.executable, "-m", "pip", "freeze", "--all"], 90, env=env)


def _metadata(dist_dir):
    for name in ("METADATA", "PKG-INFO"):
        text = read_text(os.path.join(dist_dir, name), 20000)
        if text is not None:
            head = text.split("\n\n", 1)[0]
            message = email.parser.HeaderParser().parsestr(head)
            return message.get("Name"), message.get("Version")
    if os.path.isfile(dist_dir):  # a bare .egg-info file
        text = read_text(dist_dir, 20000) or ""
        message = email.parser.HeaderParser().parsestr(text.split("\n\n", 1)[0])
        return message.get("Name"), message.get("Version")
    return None, None


def _canonical(name):
    out = []
    previous = ""
    for char in name.lower():
        char = "-" if char in "-_." else char
        if char == "-" and previous == "-":
            continue
        out.append(char)
        previous = char
    return "".join(out)


def section_dists(python):
    """Every importable distribution: name, version, where it lives, when it was installed."""
    prefix = os.path.realpath(python["prefix"])
    try:
        user_site = os.path.realpath(site.getusersitepackages())
    except Exception:
        user_site = None
    seen = set()
    out = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        for item in names:
            if not (item.endswith(".dist-info") or item.endswith(".egg-info")):
                continue
            path = os.path.join(entry, item)
            name, version = _metadata(path)
            if not name:
                continue
            key = _canonical(name)
            if key in seen:
                continue
            seen.add(key)
            if user_site and real.startswith(user_site):
                where = "user"
            elif python["in_venv"] and (real + os.sep).startswith(prefix + os.sep):
                where = "venv"
            else:
                where = "system"
            direct_url = None
            text = read_text(os.path.join(path, "direct_url.json"), 20000)
            if text:
                try:
                    direct_url = json.loads(text)
                except ValueError:
                    direct_url = None
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                mtime = None
            out.append({"name": name, "version": version, "where": where, "location": entry,
                        "installed_at": mtime, "direct_url": direct_url})
    return out


def sha256_of(path, limit):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def section_workdir(spec):
    workdir = spec.get("workdir")
    if workdir:
        workdir = os.path.abspath(os.path.expanduser(workdir))
    else:
        workdir = os.getcwd()
    out = {"path": workdir, "exists": os.path.isdir(workdir), "disk": None, "files": None}
    where = workdir if out["exists"] else os.path.expanduser("~")
    try:
        usage = shutil.disk_usage(where)
        out["disk"] = {"path": where, "total": usage.total, "free": usage.free}
    except OSError as exc:
        out["disk"] = {"path": where, "error": str(exc)}
    files = spec.get("files")
    if files is not None and out["exists"]:
        missing, different = [], []
        for rel, expected in sorted(files.items()):
            size, digest = expected[0], expected[1] if len(expected) > 1 else None
            path = os.path.join(workdir, rel)
            if not os.path.lexists(path):
                missing.append(rel)
                continue
            if os.path.islink(path) or size is None:
                continue
            try:
                actual_size = os.path.getsize(path)
                if actual_size != size:
                    different.append(rel)
                elif digest and sha256_of(path, size) != digest:
                    different.append(rel)
            except OSError:
                different.append(rel)
        out["files"] = {"checked": len(files), "missing": missing, "different": different}
    return out


def main(spec):
    started = time.time()
    report = {"probe_version": PROBE_VERSION, "time": started, "errors": []}
    sections = (
        ("python", section_python),
        ("system", section_system),
        ("nvidia_smi", section_nvidia),
        ("nvcc", section_nvcc),
        ("torch", section_torch),
        ("pip_freeze", section_pip),
    )
    for key, function in sections:
        try:
            report[key] = function()
        except Exception as exc:  # one broken section must not hide the others
            report[key] = None
            report["errors"].append("%s: %s: %s" % (key, type(exc).__name__, exc))
    try:
        report["dists"] = section_dists(report["python"] or section_python())
    except Exception as exc:
        report["dists"] = None
        report["errors"].append("dists: %s: %s" % (type(exc).__name__, exc))
    try:
        report["workdir"] = section_workdir(spec)
    except Exception as exc:
        report["workdir"] = None
        report["errors"].append("workdir: %s: %s" % (type(exc).__name__, exc))
    report["elapsed_s"] = round(time.time() - started, 3)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


def _input():
    text = globals().get("GPU_LOL_PROBE_INPUT")
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


if __name__ == "__main__":
    main(_input())
