"""One requirement string: is it something pip can install as written, and what is its name.

Used by every package source in the analyzer and by the config loader, so a line that pip would
not take, or that carries shell syntax, never reaches a setup script.
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# Direct references pip accepts without a name (a VCS or archive URL); kept as written.
_URL_RE = re.compile(r"^(git\+|hg\+|svn\+|bzr\+)?(https?|ssh|git|file)://[^\s'\"`$;|&<>()\\]+$")
_EGG_RE = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")
_SHELL_CHARS = set("`$;|&<>\\\n\r")


class RequirementError(ValueError):
    pass


def check_requirement(text: str) -> str:
    """Return the requirement unchanged if pip can take it as one argument, else raise."""
    if not isinstance(text, str) or not text.strip():
        raise RequirementError("empty requirement")
    if text != text.strip():
        raise RequirementError(f"'{text}' has leading or trailing spaces")
    if _URL_RE.match(text):
        return text
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0]
        raise RequirementError(f"'{text}' is not a valid requirement ({first})") from None
    if req.url and any(c in _SHELL_CHARS for c in req.url):
        raise RequirementError(f"'{text}' has shell characters in its URL")
    return text


def is_valid(text: str) -> bool:
    try:
        check_requirement(text)
    except RequirementError:
        return False
    return True


def name_of(text: str) -> str | None:
    """Canonical project name of a requirement string (``None`` for a nameless URL)."""
    if _URL_RE.match(text):
        egg = _EGG_RE.search(text)
        return canonicalize_name(egg.group(1)) if egg else None
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def specifier_of(text: str) -> str:
    try:
        return str(Requirement(text).specifier)
    except InvalidRequirement:
        return ""
