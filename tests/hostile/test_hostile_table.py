"""docs/security.md's case table is generated from the parameters the suite runs: it cannot drift."""

from __future__ import annotations

import make_table


def test_security_doc_table_matches_the_cases():
    doc = make_table.DOC.read_text(encoding="utf-8")
    assert make_table.render(doc) == doc, "run: python tests/hostile/make_table.py"


def test_the_suite_counts_at_least_150_cases_in_every_group():
    cases = list(make_table.all_cases())
    assert len(cases) >= 150
    groups = {c.group for c in cases}
    assert {"repo trees", ".gpu-lol.yaml", "user settings", "shells and ssh", "faults",
            "secrets and files"} <= groups
    assert len({(c.group, c.id) for c in cases}) == len(cases)  # ids are unique per group
