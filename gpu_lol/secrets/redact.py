"""Secret redaction for any text that leaves the machine (the LLM context above all).

Two layers, applied in this order:

1. Token shapes that are secrets wherever they appear: Hugging Face (``hf_…``), OpenAI-style
   (``sk-…``, ``sk-proj-…``, ``sk-ant-…``, ``sk-or-…``), AWS access key ids (``AKIA…``/``ASIA…``),
   GitHub (``ghp_…``, ``gho_…``, ``ghs_…``, ``ghu_…``, ``ghr_…``, ``github_pat_…``), Slack
   (``xox[abpsr]-…``), Google API keys (``AIza…``), Stripe live keys, npm tokens, JWTs, PEM
   private key blocks, the password in ``scheme://user:password@host`` URLs and a secret-looking
   token used as the whole user part (``https://<token>@github.com/…``).
2. Assignments whose name says "secret" (KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL, AUTH, …) and
   whose value looks like a real secret rather than a reference or a placeholder. One pattern
   covers Python (``API_KEY = "…"``, ``token="…"``), YAML (``api_key: …``), JSON
   (``"api_key": "…"``), .ini/.toml (``password = …``) and shell (``export HF_TOKEN=…``); two more
   cover ``setdefault("HF_TOKEN", "…")`` and defaults in ``token = os.getenv("T", "…")``.

The name is kept, only the value is replaced, so the reader still sees *that* a token is set
(``HF_TOKEN=[REDACTED]``), which is useful to an analysis and harmless.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

MARK = "[REDACTED]"

# ---- layer 1: token shapes ----------------------------------------------------------------
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S)
_TOKEN_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{20,}",
    r"(?<![A-Za-z0-9])sk-(?:proj-|ant-(?:api\d\d-)?|or-v\d-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}",
    r"(?<![A-Za-z0-9])(?:sk|rk|pk)_live_[A-Za-z0-9]{16,}",
    r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}(?![A-Z0-9])",
    r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{30,}",
    r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}",
    r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}",
    r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+",
    r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}",
    r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}",
    r"(?<![A-Za-z0-9])r8_[A-Za-z0-9]{30,}",
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
))
# "Authorization: Bearer <token>" and friends: keep the scheme word, drop the credential.
_AUTH_SCHEME = re.compile(r"(?i)(?P<head>\b(?:bearer|basic|token)[ \t]+)(?P<cred>[A-Za-z0-9._~+/=\-]{16,})")
# A token used as the whole userinfo: https://<token>@github.com/org/repo.git
_URL_USER_TOKEN = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^\s:/@\"'<>]{16,})(?=@)")
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@\"'<>]+:)(?P<pw>[^\s@/\"'<>]+)(?=@)")

# ---- layer 2: secret-named assignments ----------------------------------------------------
# A name (optionally closed by a quote and/or "]" as in JSON keys and os.environ["X"]), an
# optional Python annotation (": str"), ":=", "=" or ":", then a value: quoted (up to the
# matching quote on the same line) or bare (up to whitespace or punctuation).
_ASSIGN = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<nq>["']?\]?)"""
    r"""(?:[ \t]*:[ \t]*[A-Za-z_][\w.\[\]|, ]*?)?[ \t]*(?P<sep>:=|=|:)[ \t]*"""
    r"""(?:(?P<q>["'])(?P<qval>[^"'\n]*)(?P=q)|(?P<val>[^\s"',;#()\[\]{}]+))""")
# Call arguments: setdefault("HF_TOKEN", "…"), os.environ.get('KEY', '…'), ("token", "…").
_PAIR = re.compile(
    r"""(?P<nq>["'])(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P=nq)[ \t]*,[ \t]*"""
    r"""(?P<q>["'])(?P<qval>[^"'\n]*)(?P=q)""")
# A secret-named target assigned from a call: token = os.getenv("T", "<default>").
_ASSIGN_CALL = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*(?::[^=\n]*)?=[ \t]*(?P<expr>[A-Za-z_][\w.]*\(.*)$""",
    re.M)
_LITERAL = re.compile(r"""(?P<q>["'])(?P<qval>[^"'\n]*)(?P=q)""")
_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z_.\-]*")
_SECRET_WORDS = frozenset({
    "key", "apikey", "token", "secret", "password", "passwd", "pwd", "pass", "passphrase",
    "credential", "credentials", "auth", "bearer", "secretkey", "accesskey", "privatekey",
    "authtoken", "signature", "authorization", "dsn", "cookie",
})
# Whole words (split on non-alphanumerics) that mark a value as a placeholder, not a secret.
_PLACEHOLDER_WORDS = frozenset({"your", "yours", "example", "placeholder", "changeme", "redacted",
                                "dummy", "here", "todo", "insert", "replace", "fake", "xxx", "xxxx"})
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_PLACEHOLDER_VALUES = frozenset({"none", "null", "nil", "true", "false", "undefined", "required",
                                 "optional", "str", "string", "os.environ", "getenv"})
_DOTTED_IDENT = re.compile(r"[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_WORD_SPLIT = re.compile(r"[_.\-]+|(?<=[a-z0-9])(?=[A-Z])")


def _name_words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


def is_secret_name(name: str) -> bool:
    """True for names like ``HF_TOKEN``, ``api_key``, ``wandbApiKey``, ``db.password``."""
    words = _name_words(name)
    if not words:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    joined = "".join(words)
    return joined.endswith(("apikey", "secretkey", "accesskey", "privatekey", "authtoken"))


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_secret(value: str, quoted: bool) -> bool:
    """Whether a value assigned to a secret-sounding name is a real secret (not a reference)."""
    v = value.strip()
    if len(v) < 8:
        return False
    low = v.lower()
    if low in _PLACEHOLDER_VALUES or v[0] in "$%{<[@&*(" or v.startswith(("os.", "env.", "ENV[")):
        return False
    if "<" in v or ">" in v or any(w in _PLACEHOLDER_WORDS for w in _NON_ALNUM.split(low)):
        return False
    if set(v) <= {"x", "X", "*", ".", "-", "_", "0"}:
        return False
    if not quoted and _DOTTED_IDENT.fullmatch(v):
        return False  # args.api_key, settings.token: an expression, not a value
    if " " in v:
        # Prose ("Enter the token") is not a secret; a passphrase with spaces is rare but long.
        return len(v) >= 20 and entropy(v) >= 3.5 and not re.search(r"[a-z]{3,} [a-z]{3,} ", low)
    has_digit = any(c.isdigit() for c in v)
    has_alpha = any(c.isalpha() for c in v)
    if has_digit and has_alpha:
        return True
    if quoted:
        return entropy(v) >= 2.5
    return len(v) >= 16 and entropy(v) >= 3.2


def _redact_assignment(match: re.Match[str]) -> str:
    name = match.group("name")
    if not is_secret_name(name):
        return match.group(0)
    quoted = match.group("q") is not None
    value = match.group("qval") if quoted else match.groupdict().get("val")
    if value is None or MARK in value or not looks_secret(value, quoted):
        return match.group(0)
    start = match.start("qval" if quoted else "val") - match.start(0)
    end = match.end("qval" if quoted else "val") - match.start(0)
    whole = match.group(0)
    return whole[:start] + MARK + whole[end:]


def _redact_call_defaults(match: re.Match[str]) -> str:
    if not is_secret_name(match.group("name")):
        return match.group(0)

    def literal(m: re.Match[str]) -> str:
        value = m.group("qval")
        if MARK in value or _PLAIN_WORD.fullmatch(value) or not looks_secret(value, True):
            return m.group(0)  # an env var name or a word, not a value
        return m.group("q") + MARK + m.group("q")

    start = match.start("expr") - match.start(0)
    whole = match.group(0)
    return whole[:start] + _LITERAL.sub(literal, whole[start:])


def redact(text: str, extra_values: Iterable[str] = ()) -> str:
    """Return ``text`` with every secret value replaced by ``[REDACTED]``.

    ``extra_values`` are literal strings known to be secret here (the configured LLM key, the
    values of secret environment variables); each occurrence of one of at least 8 characters is
    replaced as well.
    """
    if not text:
        return text
    for value in sorted({v for v in extra_values if v and len(v) >= 8}, key=len, reverse=True):
        text = text.replace(value, MARK)
    text = _PRIVATE_KEY.sub(MARK, text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(MARK, text)
    text = _AUTH_SCHEME.sub(lambda m: m.group("head") + MARK, text)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MARK, text)
    text = _URL_USER_TOKEN.sub(
        lambda m: m.group("head") + MARK if looks_secret(m.group("user"), False) else m.group(0), text)
    text = _PAIR.sub(_redact_assignment, text)
    text = _ASSIGN_CALL.sub(_redact_call_defaults, text)
    text = _ASSIGN.sub(_redact_assignment, text)
    return text


def secret_env_values() -> list[str]:
    """Values of this process's environment variables whose names say they are secret."""
    import os

    from gpu_lol.secrets.sensitive import is_secret_env_name

    return [v for k, v in os.environ.items() if v and len(v) >= 8 and is_secret_env_name(k)]
