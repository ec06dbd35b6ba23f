"""Secret redaction: token shapes anywhere, secret-named assignments in every common syntax,
and no damage to the ordinary text an analysis needs.

Token-shaped values are built at run time (never committed as literals) so scanners do not flag
this file and each run checks fresh values.
"""

from __future__ import annotations

import secrets
import string

import pytest

from gpu_lol.secrets.redact import MARK, entropy, is_secret_name, looks_secret, redact

ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


TOKENS = {
    "huggingface": lambda: "hf_" + rand(34),
    "openai": lambda: "sk-" + rand(48),
    "openai project": lambda: "sk-proj-" + rand(40) + "_" + rand(20),
    "anthropic": lambda: "sk-ant-api03-" + rand(60),
    "openrouter": lambda: "sk-or-v1-" + rand(64, "0123456789abcdef"),
    "aws key id": lambda: "AKIA" + rand(16, string.ascii_uppercase + string.digits),
    "github classic": lambda: "ghp_" + rand(36),
    "github fine-grained": lambda: "github_pat_" + rand(22) + "_" + rand(59),
    "slack": lambda: "xoxb-" + rand(12, string.digits) + "-" + rand(24),
    "google": lambda: "AIza" + rand(35),
    "jwt": lambda: "eyJ" + rand(20) + ".eyJ" + rand(30) + "." + rand(43),
}


@pytest.mark.parametrize("kind", sorted(TOKENS))
@pytest.mark.parametrize("template", [
    "{t}",
    "token: {t}",
    "  login(token='{t}')  # prod",
    "some prose mentioning {t}, then more",
    '{{"value": "{t}"}}',
    "curl -H 'Authorization: Bearer {t}' https://x",
])
def test_token_shapes_are_redacted_anywhere(kind, template):
    token = TOKENS[kind]()
    out = redact(template.format(t=token))
    assert token not in out
    assert MARK in out


def test_private_key_blocks_including_unterminated():
    body = "\n".join(rand(64, ALNUM + "+/") for _ in range(5))
    for kind in ("RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"):
        text = f"before\n-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\nafter"
        out = redact(text)
        assert body.splitlines()[2] not in out
        assert out.startswith("before\n") and out.endswith("\nafter")
    cut = f"key = '''-----BEGIN PRIVATE KEY-----\n{body}"  # truncated file: no END line
    assert body.splitlines()[-1] not in redact(cut)


@pytest.mark.parametrize("line,value", [
    ('WANDB_API_KEY = "{v}"', "hex40"),                 # Python constant
    ("API_KEY: str = '{v}'", "hex40"),                  # annotated constant
    ('os.environ["MY_SECRET"] = "{v}"', "mixed"),       # environ assignment
    ('os.environ.setdefault("HF_TOKEN", "{v}")', "mixed"),
    ("token = os.getenv('T', '{v}')", "mixed"),
    ("wandb.login(key='{v}')", "hex40"),                 # keyword argument
    ("api_key: {v}", "mixed"),                          # YAML
    ('  db_password: "{v}"', "letters"),                # YAML, quoted, letters only
    ('"client_secret": "{v}"', "mixed"),                # JSON
    ("password = {v}", "letters"),                      # .ini / .toml bare
    ('secret_key = "{v}"', "mixed"),                    # .toml
    ("export DB_PASSWORD={v}", "mixed"),                # shell
    ('export HUGGINGFACE_HUB_TOKEN="{v}"', "mixed"),
    ("COMET_API_KEY={v}", "hex40"),                     # .env style line in a script
    ("wandbApiKey = '{v}'", "mixed"),                   # camelCase
    ("aws_secret_access_key = {v}", "aws"),             # AWS's own documented example shape
    ("postgres://user:{v}@db:5432/app", "mixed"),       # URL credentials
    ("git+https://{v}@github.com/org/private.git", "mixed"),  # token as the URL's user
])
def test_secret_named_assignments(line, value):
    v = {"hex40": rand(40, "0123456789abcdef"), "mixed": rand(20) + "7",
         "letters": rand(18, string.ascii_letters), "aws": rand(40, ALNUM + "/+")}[value]
    out = redact(line.format(v=v))
    assert v not in out, out
    assert MARK in out


@pytest.mark.parametrize("line", [
    'token = os.environ["HF_TOKEN"]',
    "token = args.token",
    "HF_TOKEN = os.getenv('HF_TOKEN')",
    "tokenizer.pad_token = tokenizer.eos_token",
    'pad_token: "[PAD]"',
    'eos_token: "<|endoftext|>"',
    '"bos_token_id": 1',
    "max_new_tokens = 512",
    'api_key = "your-api-key-here"',
    "password: ${DB_PASSWORD}",
    "token: $HF_TOKEN",
    "secret = None",
    "use_auth_token: true",
    'help="The token to use for the hub"',
    "model_name_or_path: meta-llama/Llama-3.1-8B",
    "torch==2.4.1",
    "learning_rate = 2e-4",
    "key: value",
    "git+https://git@github.com/org/repo.git",
    "ssh://deploy-user@host.example.com/srv",
])
def test_ordinary_text_is_left_alone(line):
    assert redact(line) == line


def test_redaction_is_idempotent_and_keeps_names():
    text = f'HF_TOKEN = "hf_{rand(34)}"\nexport WANDB_API_KEY={rand(40, "0123456789abcdef")}\n'
    once = redact(text)
    assert redact(once) == once
    assert once == f'HF_TOKEN = "{MARK}"\nexport WANDB_API_KEY={MARK}\n'


def test_extra_values_are_redacted_verbatim():
    secret = rand(24)
    assert redact(f"see {secret} there", [secret]) == f"see {MARK} there"
    assert redact("short abc", ["abc"]) == "short abc"  # too short to be meaningful


def test_helpers():
    assert is_secret_name("HF_TOKEN") and is_secret_name("wandbApiKey") and is_secret_name("db.password")
    assert is_secret_name("client-secret") and is_secret_name("APIKEY")
    assert not is_secret_name("tokenizer") and not is_secret_name("max_tokens")
    assert not is_secret_name("monkey") and not is_secret_name("keyboard")
    assert entropy("aaaa") == 0 and entropy("abcd") == 2
    assert looks_secret(rand(20) + "1", quoted=False)
    assert not looks_secret("args.api_key", quoted=False)
    assert not looks_secret("xxxxxxxxxxxx", quoted=True)
