"""How much a file's location says about the repo's main purpose.

Code under ``tests/`` or ``docs/`` says nothing about what the repo runs; ``examples/`` says
something, but less than the root, ``scripts/`` or the main package.
"""

from __future__ import annotations

# Tests, docs and vendored code: never the repo's own runtime (packages.py uses this list too).
NEVER_DIRS = frozenset({
    "test", "tests", "testing", "unittests", "unit_tests", "integration_tests", "doc", "docs",
    "documentation", "third_party", "thirdparty", "third-party", "3rdparty", "vendor", "vendored",
    "external", "externals", "extern", "submodules", ".github", "site", "website",
})
# Directories whose content never decides workload, model or GPU count.
IGNORED_DIRS = NEVER_DIRS | frozenset({
    "deps", "ci", "conftest", "fixtures", "legacy", "deprecated", "old", "archive", "archived", "assets",
    "static", "templates", "benchmark_results",
})
# Directories whose content counts, but less than the repo's main code.
SECONDARY_DIRS = frozenset({
    "examples", "example", "tutorials", "tutorial", "demos", "contrib", "community", "research",
    "projects", "playground", "sandbox", "experimental", "benchmarks", "benchmark", "bench", "tools",
    "misc", "extras", "samples", "cookbook", "recipes_extra",
})


def weight(rel: str) -> float:
    """0 for ignored locations, 0.4 for secondary ones, 1.0 otherwise, slightly less when deep."""
    parts = [p.lower() for p in rel.split("/")[:-1]]
    if any(p in IGNORED_DIRS or p.startswith("test_") for p in parts):
        return 0.0
    name = rel.rsplit("/", 1)[-1].lower()
    if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return 0.0
    w = 0.4 if any(p in SECONDARY_DIRS for p in parts) else 1.0
    depth = len(parts)
    if depth >= 3:
        w *= 0.8
    return w


def is_ignored(rel: str) -> bool:
    return weight(rel) == 0.0
