"""Evidence: where in the repo a finding came from, as ``file:line`` a user can open."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Evidence:
    file: str
    line: int | None = None
    text: str = ""

    def cite(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        from gpu_lol.secrets.redact import redact

        snippet = redact(" ".join(self.text.split()))
        if len(snippet) > 90:
            snippet = snippet[:87] + "..."
        return f"{self.cite()}: {snippet}" if snippet else self.cite()
