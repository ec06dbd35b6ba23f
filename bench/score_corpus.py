#!/usr/bin/env python3
"""Score `gpu-lol analyze` against the hand-labelled corpus (bench/corpus.yaml + bench/heldout.yaml).

For every corpus entry this script
  1. finds the fetched snapshot (a git directory) under --mirrors,
  2. exports the pinned commit into a temporary directory (falls back to the
     snapshot's HEAD, and says so, when the pinned commit is absent),
  3. runs `<gpu-lol> analyze --json <dir> --no-llm` with a throw-away GPU_LOL_HOME,
  4. compares the JSON it prints with the labels.

The corpus has a development part (bench/corpus.yaml, rules may be tuned to it) and a
held-out part (bench/heldout.yaml, labelled blind, scored only at the end of a change);
--split picks dev (default), heldout or all.

Scored fields ("all right" = all three):
  workload  output `workload_type` is the labelled workload (or one of a list)
  gpus      output `gpu_count` is the labelled count (or one of a list)
  gpu       the GPU picked is acceptable. CPU-only label (gpu_count 0): output must have
            gpu_type null and gpu_count 0. Otherwise the card picked (`gpu_type`, its memory from
            gpu_lol/data/gpus.yaml) holds the labelled minimum (card >= min_vram_gb) and its own
            estimate, and is not wasteful: card <= max_vram_gb, or a card of the smallest memory
            in the catalog (nothing smaller could be picked). How close the estimate itself is,
            is the separate VRAM figure below. A label whose gpu_count list contains 0 also
            accepts a CPU answer.
  Also reported, not part of "all right": the estimate itself within [min_vram_gb,
  max_vram_gb] (the rule before 2026-12: an estimate of 55 GB for a label whose minimum is
  the 80 GB card it needs failed it although the 80 GB card was picked).
Also reported: VRAM within [0.8x, 2.5x] of the labelled minimum (GPU labels only),
per-kind scores, and the confusion between labelled and answered workloads.

Exit status is non-zero only when the script itself cannot work (bad corpus,
analyzer command not found, no snapshot at all); wrong answers, analyzer
crashes and timeouts are scored as wrong and reported.

Only the standard library and PyYAML are used.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - reported to the user
    sys.stderr.write("score_corpus.py needs PyYAML (pip install pyyaml)\n")
    sys.exit(2)

HERE = Path(__file__).resolve().parent
SPLITS = {"dev": [HERE / "corpus.yaml"], "heldout": [HERE / "heldout.yaml"]}
SPLITS["all"] = SPLITS["dev"] + SPLITS["heldout"]
VRAM_RATIO = (0.8, 2.5)
CATALOG = HERE.parent / "gpu_lol" / "data" / "gpus.yaml"
_CARDS: dict[str, float] | None = None


def card_vram(gpu_type) -> float | None:
    """Memory of one card of gpu-lol's catalog id (None when unknown)."""
    global _CARDS
    if _CARDS is None:
        try:
            _CARDS = {str(row["id"]): float(row["vram_gb"]) for row in yaml.safe_load(CATALOG.read_text())}
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            _CARDS = {}
    return _CARDS.get(str(gpu_type)) if gpu_type is not None else None


def smallest_card() -> float:
    """The least memory any catalog card has: a plan on such a card cannot be cheaper in memory."""
    card_vram(None)
    return min(_CARDS.values()) if _CARDS else 0.0
DEFAULT_MIRRORS = "/work/.mirror"
OK, BAD = "\u2713", "\u2717"


class SetupError(Exception):
    """A problem with the scorer's inputs, not with the analyzer."""


# --------------------------------------------------------------------------- corpus


def as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def load_split(name: str) -> list[dict]:
    """Entries of one split (dev / heldout / all), each tagged with the split it came from."""
    entries: list[dict] = []
    seen: dict[str, Path] = {}
    for path in SPLITS[name]:
        part = "heldout" if path.name == "heldout.yaml" else "dev"
        for entry in load_corpus(path):
            if entry["id"] in seen:
                raise SetupError(f"{path}: id {entry['id']!r} is also in {seen[entry['id']]}")
            seen[entry["id"]] = path
            entry.setdefault("split", part)
            entries.append(entry)
    return entries


def load_corpus(path: Path) -> list[dict]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"cannot read corpus {path}: {exc}") from exc
    if not isinstance(data, list):
        raise SetupError(f"{path}: expected a YAML list of entries")
    seen = set()
    for i, entry in enumerate(data):
        where = f"{path}: entry #{i + 1}"
        if not isinstance(entry, dict):
            raise SetupError(f"{where}: not a mapping")
        for key in ("id", "repo", "commit", "labels"):
            if key not in entry:
                raise SetupError(f"{where}: missing '{key}'")
        if entry["id"] in seen:
            raise SetupError(f"{where}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
        labels = entry["labels"]
        for key in ("workload", "gpu_count", "min_vram_gb", "max_vram_gb"):
            if key not in labels:
                raise SetupError(f"{where} ({entry['id']}): labels missing '{key}'")
    return data


# --------------------------------------------------------------------------- snapshots


def _is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def find_git_dir(mirrors: Path, repo: str) -> Path | None:
    """Locate the snapshot of owner/name under the mirrors directory.

    The fetch tool stores snapshots as <mirrors>/<owner>+<name>/<something>/ with a
    bare git directory inside (usually .../repo). Plain clones (<dir>/.git) work too.
    """
    owner, _, name = repo.partition("/")
    wanted = {f"{owner}+{name}".lower(), f"{owner}__{name}".lower(), name.lower()}
    candidates = []
    if mirrors.is_dir():
        for child in sorted(mirrors.iterdir()):
            if child.is_dir() and child.name.lower() in wanted:
                # exact owner+name first, bare name last
                rank = 0 if child.name.lower() == f"{owner}+{name}".lower() else 1
                candidates.append((rank, child))
    for _, top in sorted(candidates, key=lambda c: c[0]):
        for cand in (top, top / "repo", top / ".git"):
            if _is_git_dir(cand):
                return cand
        for sub in sorted(top.iterdir()):
            if sub.is_dir():
                for cand in (sub, sub / ".git"):
                    if _is_git_dir(cand):
                        return cand
    return None


def git(git_dir: Path, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        capture_output=True,
        **kw,
    )


def resolve_commit(git_dir: Path, commit: str) -> tuple[str, str | None]:
    """Return (commit to export, warning or None)."""
    probe = git(git_dir, "cat-file", "-e", f"{commit}^{{commit}}")
    if probe.returncode == 0:
        return commit, None
    head = git(git_dir, "rev-parse", "HEAD", text=True)
    if head.returncode != 0:
        raise SetupError(f"{git_dir}: cannot resolve HEAD: {head.stderr.strip()}")
    sha = head.stdout.strip()
    return sha, f"pinned commit {commit[:12]} not in snapshot; used HEAD {sha[:12]}"


def _extract_archive(git_dir: Path, commit: str, dest: Path) -> None:
    proc = subprocess.Popen(
        ["git", f"--git-dir={git_dir}", "archive", "--format=tar", commit],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    tar_error = None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # pragma: no cover - very old Python
                tar.extractall(dest)
    except tarfile.TarError as exc:
        tar_error = exc
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0 or tar_error is not None:
        # prefer git's own message (e.g. a blob the snapshot does not carry)
        raise RuntimeError(last_line(err) or str(tar_error) or f"git archive rc={rc}")


def _extract_blobs(git_dir: Path, commit: str, dest: Path) -> int:
    """Write every readable blob of `commit` under dest; return how many were skipped.

    Snapshots may list their largest files without carrying the blobs, which makes
    `git archive` fail; this path exports what is there and skips the rest.
    """
    listing = git(git_dir, "ls-tree", "-r", "-z", "--full-tree", commit)
    if listing.returncode != 0:
        raise RuntimeError(listing.stderr.decode(errors="replace").strip())
    entries = []
    for rec in listing.stdout.split(b"\0"):
        if not rec:
            continue
        meta, _, path = rec.partition(b"\t")
        mode, kind, sha = meta.split()
        entries.append((mode.decode(), kind.decode(), sha.decode(), path.decode("utf-8", "surrogateescape")))
    blobs = [e for e in entries if e[1] == "blob"]
    skipped = len(entries) - len(blobs)  # submodules (commit entries)
    if not blobs:
        return skipped
    batch = subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
        input=b"".join(f"{sha}\n".encode() for _, _, sha, _ in blobs),
        capture_output=True,
    )
    out = batch.stdout
    pos = 0
    root = dest.resolve()
    for mode, _, sha, rel in blobs:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].decode()
        pos = nl + 1
        parts = header.split()
        if len(parts) < 3 or parts[1] == "missing":
            skipped += 1
            continue
        size = int(parts[2])
        data = out[pos : pos + size]
        pos += size + 1  # trailing newline after the object body
        target = (dest / rel).resolve()
        if root not in target.parents:
            skipped += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            link = data.decode("utf-8", "surrogateescape")
            resolved = (target.parent / link).resolve()
            if os.path.isabs(link) or (resolved != root and root not in resolved.parents):
                skipped += 1
                continue
            try:
                target.symlink_to(link)
            except OSError:
                skipped += 1
            continue
        target.write_bytes(data)
        if mode == "100755":
            target.chmod(0o755)
    return skipped


def export_commit(git_dir: Path, commit: str, dest: Path) -> str | None:
    """Export commit into dest. Returns a note when files had to be skipped."""
    try:
        _extract_archive(git_dir, commit, dest)
        return None
    except (RuntimeError, tarfile.TarError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        skipped = _extract_blobs(git_dir, commit, dest)
        reason = str(exc).strip() or "git archive failed"
        return f"{skipped} file(s) absent from the snapshot (git archive: {reason[:70]}); exported the rest blob by blob"


# --------------------------------------------------------------------------- analyzer


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def parse_json_output(stdout: str):
    stdout = stdout.strip()
    if not stdout:
        raise ValueError("analyzer printed nothing on stdout")
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        pass
    # tolerate log lines around the JSON object
    start, end = stdout.find("{"), stdout.rfind("}")
    if start != -1 and end > start:
        return json.loads(stdout[start : end + 1])
    raise ValueError("analyzer stdout is not JSON")


def run_analyzer(cmd: list[str], repo_dir: Path, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="gpu-lol-home-") as home:
        env = dict(os.environ)
        env["GPU_LOL_HOME"] = home
        argv = [*cmd, "analyze", "--json", str(repo_dir), "--no-llm"]
        started = time.monotonic()
        try:
            # own process group, so a timeout also ends whatever the analyzer spawned
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=env, start_new_session=True,
            )
        except OSError as exc:
            return {"error": f"could not start analyzer: {exc}", "seconds": 0.0}
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            try:
                _, stderr = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                stderr = ""
            tail = last_line(stderr)
            return {"error": f"timeout after {timeout:.0f}s" + (f": {tail}" if tail else ""), "seconds": timeout}
        seconds = round(time.monotonic() - started, 2)
        if proc.returncode != 0:
            tail = last_line(stderr) or last_line(stdout) or "(no output)"
            return {"error": f"exit {proc.returncode}: {tail}", "seconds": seconds}
        try:
            out = parse_json_output(stdout)
        except ValueError as exc:
            return {"error": f"{exc}: {last_line(stdout) or last_line(stderr)}", "seconds": seconds}
        if not isinstance(out, dict):
            return {"error": "analyzer JSON is not an object", "seconds": seconds}
        return {"output": out, "seconds": seconds}


# --------------------------------------------------------------------------- scoring


def _num(x):
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return x
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _norm(s) -> str:
    return str(s).strip().lower() if s is not None else ""


def score_entry(labels: dict, out: dict | None) -> dict:
    want_workloads = [_norm(w) for w in as_list(labels["workload"])]
    want_counts = [int(c) for c in as_list(labels["gpu_count"])]
    lo = _num(labels.get("min_vram_gb")) or 0
    hi = _num(labels.get("max_vram_gb"))
    cpu_only = want_counts == [0]

    if out is None:
        return {"workload": False, "gpu_count": False, "gpu": False, "all": False, "model_hint": False,
                "vram_ratio": False if (want_counts != [0] and lo) else None,
                "need_in_range": False if want_counts != [0] else None}

    got_workload = _norm(out.get("workload_type"))
    got_count = out.get("gpu_count")
    got_count_n = _num(got_count)
    got_type = out.get("gpu_type")
    got_vram = _num(out.get("vram_required_gb"))

    workload_ok = got_workload in want_workloads
    count_ok = got_count_n is not None and float(got_count_n).is_integer() and int(got_count_n) in want_counts

    if cpu_only:
        gpu_ok = got_type is None and got_count_n == 0
    elif got_count_n == 0 and 0 in want_counts:
        gpu_ok = got_type is None
    elif got_count_n == 0 or got_type is None or got_vram is None:
        gpu_ok = False
    else:
        card = card_vram(got_type)
        gpu_ok = (card is not None and card + 0.5 >= lo  # holds what the main path needs
                  and got_vram <= card + 0.5  # holds its own estimate
                  and (hi is None or card <= hi + 0.5 or card <= smallest_card()))  # not wasteful
    need_in_range = None
    if not cpu_only:
        need_in_range = (got_vram is not None and got_count_n not in (None, 0)
                         and got_vram >= lo and (hi is None or got_vram <= hi))

    # VRAM close to the labelled minimum: [0.8x, 2.5x] (None for CPU labels)
    vram_ratio_ok = None
    if not cpu_only and lo:
        vram_ratio_ok = got_vram is not None and got_count_n not in (None, 0) and (
            VRAM_RATIO[0] * lo <= got_vram <= VRAM_RATIO[1] * lo
        )

    # informational only: does the reported model name mention the labelled model?
    model_hint = None
    want_model = labels.get("model")
    if want_model:
        got_model = out.get("model") or {}
        got_name = _norm(got_model.get("name") if isinstance(got_model, dict) else got_model)
        key = _norm(str(want_model).split()[0]).split("/")[-1]
        model_hint = bool(got_name) and (key in got_name or got_name.split("/")[-1] in key)

    return {
        "workload": workload_ok,
        "gpu_count": count_ok,
        "gpu": gpu_ok,
        "all": workload_ok and count_ok and gpu_ok,
        "vram_ratio": vram_ratio_ok,
        "need_in_range": need_in_range,
        "model_hint": model_hint,
    }


def evaluate(entry: dict, mirrors: Path, cmd: list[str], timeout: float, keep: Path | None) -> dict:
    result = {
        "id": entry["id"],
        "repo": entry["repo"],
        "kind": entry.get("kind"),
        "split": entry.get("split"),
        "pinned_commit": entry["commit"],
        "labels": entry["labels"],
        "notes": [],
    }
    git_dir = find_git_dir(mirrors, entry["repo"])
    if git_dir is None:
        result["status"] = "no-snapshot"
        result["notes"].append(f"no snapshot of {entry['repo']} under {mirrors}")
        return result
    result["git_dir"] = str(git_dir)
    try:
        commit, warn = resolve_commit(git_dir, entry["commit"])
    except SetupError as exc:
        result["status"] = "no-snapshot"
        result["notes"].append(str(exc))
        return result
    result["commit"] = commit
    if warn:
        result["notes"].append(warn)

    tmp_parent = tempfile.mkdtemp(prefix=f"gpu-lol-bench-{entry['id']}-")
    repo_dir = Path(tmp_parent) / entry["repo"].split("/")[-1]
    repo_dir.mkdir()
    try:
        try:
            note = export_commit(git_dir, commit, repo_dir)
        except Exception as exc:  # export problems are reported, not fatal
            result["status"] = "export-failed"
            result["notes"].append(f"export failed: {exc}")
            result["score"] = score_entry(entry["labels"], None)
            return result
        if note:
            result["notes"].append(note)
        run = run_analyzer(cmd, repo_dir, timeout)
        result["seconds"] = run.get("seconds")
        if "error" in run:
            result["status"] = "analyzer-error"
            result["error"] = run["error"]
            result["score"] = score_entry(entry["labels"], None)
        else:
            result["status"] = "ok"
            result["output"] = run["output"]
            result["score"] = score_entry(entry["labels"], run["output"])
        return result
    finally:
        if keep is not None:
            dst = keep / entry["id"]
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(repo_dir, dst, symlinks=True)
        shutil.rmtree(tmp_parent, ignore_errors=True)


# --------------------------------------------------------------------------- report


def _fmt_list(v) -> str:
    items = as_list(v)
    return "|".join(str(i) for i in items) if items else "-"


def _fmt_num(v) -> str:
    n = _num(v)
    if n is None:
        return "-" if v is None else str(v)
    return f"{n:g}"


def _mark(flag) -> str:
    return OK if flag else BAD


def print_table(results: list[dict], out=sys.stdout) -> None:
    headers = ["id", "workload exp", "got", "", "gpus exp", "got", "", "vram exp", "got (gpu_type)", "", "all"]
    rows = []
    for r in results:
        lab = r["labels"]
        if r.get("status") == "no-snapshot":
            rows.append([r["id"], "(no snapshot)", "", "", "", "", "", "", "", "", "-"])
            continue
        o = r.get("output") or {}
        s = r.get("score") or {}
        if lab.get("max_vram_gb") is None and as_list(lab["gpu_count"]) == [0]:
            vexp = "cpu"
        else:
            vexp = f"{_fmt_num(lab.get('min_vram_gb'))}-{_fmt_num(lab.get('max_vram_gb')) if lab.get('max_vram_gb') is not None else 'inf'}"
        if r.get("status") == "ok":
            gt = o.get("gpu_type")
            vgot = f"{_fmt_num(o.get('vram_required_gb'))} ({gt if gt is not None else 'null'})"
            wgot, cgot = str(o.get("workload_type")), _fmt_num(o.get("gpu_count"))
        else:
            wgot = cgot = vgot = "ERR"
        rows.append([
            r["id"], _fmt_list(lab["workload"]), wgot, _mark(s.get("workload")),
            _fmt_list(lab["gpu_count"]), cgot, _mark(s.get("gpu_count")),
            vexp, vgot, _mark(s.get("gpu")), _mark(s.get("all")),
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)] if rows else [len(h) for h in headers]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line.rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)


def summarize(results: list[dict]) -> dict:
    scored = [r for r in results if r.get("status") != "no-snapshot"]
    n = len(scored)
    summary = {"scored": n, "skipped_no_snapshot": len(results) - n}
    for field in ("all", "workload", "gpu_count", "gpu"):
        hits = sum(1 for r in scored if (r.get("score") or {}).get(field))
        summary[field] = {"right": hits, "total": n, "accuracy": round(hits / n, 4) if n else None}
    hinted = [r for r in scored if (r.get("score") or {}).get("model_hint") is not None]
    summary["model_hint_informational"] = {
        "right": sum(1 for r in hinted if r["score"]["model_hint"]),
        "total": len(hinted),
    }
    ranged = [r for r in scored if (r.get("score") or {}).get("need_in_range") is not None]
    summary["need_in_range"] = {"right": sum(1 for r in ranged if r["score"]["need_in_range"]),
                                "total": len(ranged)}
    ratio = [r for r in scored if (r.get("score") or {}).get("vram_ratio") is not None]
    summary["vram_ratio"] = {
        "right": sum(1 for r in ratio if r["score"]["vram_ratio"]),
        "total": len(ratio),
        "range": list(VRAM_RATIO),
    }
    kinds: dict[str, dict] = {}
    for r in scored:
        k = kinds.setdefault(str(r.get("kind") or "-"), {"right": 0, "total": 0})
        k["total"] += 1
        k["right"] += 1 if (r.get("score") or {}).get("all") else 0
    summary["per_kind"] = dict(sorted(kinds.items()))
    summary["workload_confusion"] = workload_confusion(scored)
    summary["calibration"] = calibration(scored)
    summary["analyzer_errors"] = sum(1 for r in scored if r.get("status") in ("analyzer-error", "export-failed"))
    return summary


# the analyzer's confidence per decision (its --json "confidence") -> the score field it predicts
CALIBRATED = {"workload": "workload", "gpu_count": "gpu_count", "vram": "vram_ratio", "overall": "all"}


def calibration(scored: list[dict]) -> dict[str, dict[str, dict[str, int]]]:
    """Is the stated confidence honest? decision -> confidence level -> right/total, over the
    entries that have both a confidence for the decision and a score for it."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for decision, field in CALIBRATED.items():
        for r in scored:
            if r.get("status") != "ok":
                continue
            level = ((r.get("output") or {}).get("confidence") or {}).get(decision)
            hit = (r.get("score") or {}).get(field)
            if level is None or hit is None:
                continue
            cell = table.setdefault(decision, {}).setdefault(str(level), {"right": 0, "total": 0})
            cell["total"] += 1
            cell["right"] += 1 if hit else 0
    order = {"high": 0, "medium": 1, "low": 2}
    return {d: dict(sorted(levels.items(), key=lambda kv: order.get(kv[0], 3))) for d, levels in table.items()}


def workload_confusion(scored: list[dict]) -> dict[str, dict[str, int]]:
    """labelled workload (first listed when several are accepted) -> answered workload -> count."""
    table: dict[str, dict[str, int]] = {}
    for r in scored:
        want = as_list(r["labels"]["workload"])
        got = (r.get("output") or {}).get("workload_type") if r.get("status") == "ok" else "error"
        got = _norm(got) or "none"
        # an answer that is one of the accepted workloads counts on the diagonal
        row = got if got in [_norm(w) for w in want] else _norm(want[0] if want else "none")
        cell = table.setdefault(row, {})
        cell[got] = cell.get(got, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(table.items())}


def print_summary(results: list[dict], summary: dict, out=sys.stdout) -> None:
    print(file=out)
    for r in results:
        msgs = list(r.get("notes") or [])
        if r.get("error"):
            msgs.insert(0, f"analyzer error: {r['error']}")
        for m in msgs:
            print(f"  [{r['id']}] {m}", file=out)

    def pct(d):
        return f"{d['right']}/{d['total']}" + (f" ({100 * d['accuracy']:.0f}%)" if d["accuracy"] is not None else "")

    print(file=out)
    print(f"all-right: {summary['all']['right']}/{summary['all']['total']}", file=out)
    print(
        "per-field: workload {}  gpu_count {}  gpu (card holds min, not wasteful) {}  | model name (informational) {}/{}".format(
            pct(summary["workload"]), pct(summary["gpu_count"]), pct(summary["gpu"]),
            summary["model_hint_informational"]["right"], summary["model_hint_informational"]["total"],
        ),
        file=out,
    )
    vr = summary["vram_ratio"]
    if vr["total"]:
        print(f"vram within {vr['range'][0]}x-{vr['range'][1]}x of the labelled minimum: {vr['right']}/{vr['total']} "
              f"({100 * vr['right'] / vr['total']:.0f}%)", file=out)
    nr = summary["need_in_range"]
    if nr["total"]:
        print(f"estimate within [min_vram_gb, max_vram_gb] (GPU labels; the pre-2026-12 gpu rule): "
              f"{nr['right']}/{nr['total']}", file=out)
    print("per kind (all right): " + ", ".join(
        f"{k} {v['right']}/{v['total']}" for k, v in summary["per_kind"].items()), file=out)
    conf = summary["workload_confusion"]
    answers = sorted({a for row in conf.values() for a in row})
    if conf:
        print("workload confusion (rows: labelled, columns: answered):", file=out)
        width = max(len(x) for x in [*conf, *answers, "labelled"]) + 2
        print("  " + "labelled".ljust(width) + "".join(a.ljust(width) for a in answers), file=out)
        for row, cells in conf.items():
            print("  " + row.ljust(width) + "".join(str(cells.get(a, 0)).ljust(width) for a in answers), file=out)
    if summary.get("calibration"):
        print("right per stated confidence (an honest analyzer is right more often when it says high):", file=out)
        for decision, levels in summary["calibration"].items():
            print(f"  {decision}: " + ", ".join(f"{lvl} {c['right']}/{c['total']}" for lvl, c in levels.items()),
                  file=out)
    if summary["analyzer_errors"]:
        print(f"analyzer errors/timeouts: {summary['analyzer_errors']}", file=out)
    if summary["skipped_no_snapshot"]:
        print(f"not scored (snapshot missing): {summary['skipped_no_snapshot']} - see bench/fetch_corpus.md", file=out)


def print_sources(entries: list[dict]) -> None:
    """The fetch sources and pinned commits only (no labels), one per line."""
    for e in entries:
        print(f"github:{e['repo']}  {e['commit']}  {e['id']}  ({e.get('split', 'dev')})")


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=sorted(SPLITS), default="dev",
                    help="dev (bench/corpus.yaml, default), heldout (bench/heldout.yaml) or all")
    ap.add_argument("--corpus", help="score this corpus YAML instead of a split")
    ap.add_argument("--sources", action="store_true",
                    help="print the fetch sources and pinned commits of the chosen entries (no labels) and exit")
    ap.add_argument("--mirrors", default=DEFAULT_MIRRORS, help=f"directory of fetched snapshots (default: {DEFAULT_MIRRORS})")
    ap.add_argument("--gpu-lol", default="gpu-lol", help="analyzer command, shell-split (default: gpu-lol on PATH), e.g. 'python -m gpu_lol'")
    ap.add_argument("--only", action="append", metavar="ID", help="score only this entry id (repeatable)")
    ap.add_argument("--json", metavar="PATH", help="write machine-readable results to PATH ('-' for stdout)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per analyzer run (default 300)")
    ap.add_argument("--jobs", type=int, default=1, help="entries to analyze in parallel (default 1)")
    ap.add_argument("--rescore", metavar="RESULTS",
                    help="score the outputs saved in a --json RESULTS file again (no analyzer run)")
    ap.add_argument("--keep-exports", metavar="DIR", help="also copy each exported tree to DIR/<id> for debugging")
    args = ap.parse_args(argv)

    if args.rescore:
        try:
            saved = json.loads(Path(args.rescore).read_text(encoding="utf-8"))["results"]
        except (OSError, ValueError, KeyError) as exc:
            print(f"score_corpus.py: cannot read {args.rescore}: {exc}", file=sys.stderr)
            return 2
        for r in saved:
            if r.get("status") != "no-snapshot":
                r["score"] = score_entry(r["labels"], r.get("output") if r.get("status") == "ok" else None)
        print_table(saved)
        print_summary(saved, summarize(saved))
        return 0

    try:
        entries = load_corpus(Path(args.corpus)) if args.corpus else load_split(args.split)
        if args.only:
            known = {e["id"] for e in entries}
            unknown = [i for i in args.only if i not in known]
            if unknown:
                raise SetupError(f"unknown --only id(s): {', '.join(unknown)}")
            entries = [e for e in entries if e["id"] in set(args.only)]
        if args.sources:
            print_sources(entries)
            return 0
        cmd = shlex.split(args.gpu_lol)
        if not cmd:
            raise SetupError("--gpu-lol is empty")
        if shutil.which(cmd[0]) is None and not Path(cmd[0]).is_file():
            raise SetupError(f"analyzer command not found: {cmd[0]!r} (use --gpu-lol)")
        if shutil.which("git") is None:
            raise SetupError("git is not on PATH")
        mirrors = Path(args.mirrors)
        if not mirrors.is_dir():
            raise SetupError(f"mirrors directory does not exist: {mirrors}")
        keep = Path(args.keep_exports) if args.keep_exports else None
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
    except SetupError as exc:
        print(f"score_corpus.py: {exc}", file=sys.stderr)
        return 2

    def work(entry):
        return evaluate(entry, mirrors, cmd, args.timeout, keep)

    if args.jobs > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(work, entries))
    else:
        results = []
        for entry in entries:
            print(f"... {entry['id']}", file=sys.stderr, flush=True)
            results.append(work(entry))

    if results and all(r.get("status") == "no-snapshot" for r in results):
        print_table(results)
        print(f"score_corpus.py: no snapshot found under {mirrors} for any entry; fetch them first (bench/fetch_corpus.md)", file=sys.stderr)
        return 2

    summary = summarize(results)
    report_to = sys.stderr if args.json == "-" else sys.stdout
    print_table(results, out=report_to)
    print_summary(results, summary, out=report_to)

    if args.json:
        payload = {
            "corpus": args.corpus or args.split,
            "mirrors": str(mirrors),
            "analyzer": cmd,
            "summary": summary,
            "results": results,
        }
        text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
