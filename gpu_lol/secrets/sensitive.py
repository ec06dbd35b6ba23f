"""What counts as secret: files never synced by accident or sent to an LLM, and env var names
whose values are never printed."""

from __future__ import annotations

import fnmatch
import re

# Basenames (fnmatch, case-insensitive) of files that hold credentials.
SECRET_FILE_PATTERNS = (
    ".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_rsa_*", "id_ed25519_*",
    "credentials", "credentials.json", "credentials.yaml", "credentials.yml", ".netrc", ".pypirc",
    ".git-credentials", "service-account*.json", "*serviceaccount*.json", "secrets.yaml", "secrets.yml",
    "secrets.json", "secrets.toml", ".secrets", "token.json", "*.ovpn", ".htpasswd", "kubeconfig",
    "kaggle.json", ".npmrc", ".yarnrc.yml", ".dockercfg", ".s3cfg", ".boto", ".pgpass", ".my.cnf", "*.tfvars",
    "*.tfstate", "client_secret*.json", "*.keytab", "*.gpg", "*.kdbx", ".passwd-s3fs",
)
# Templates that are safe to read and sync.
SAFE_FILE_PATTERNS = (".env.example", ".env.sample", ".env.template", ".env.dist", "*.pub",
                      "*.env.example", "*.env.sample")

# Environment variable names whose values are secrets (rendered as SkyPilot `secrets:`).
_SECRET_ENV_RE = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)(_|$)", re.I)
KNOWN_SECRET_ENVS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY", "OPENAI_API_KEY",
                     "ANTHROPIC_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "COMET_API_KEY",
                     "NEPTUNE_API_TOKEN", "RUNPOD_API_KEY")


def is_secret_file(rel_path: str) -> bool:
    name = rel_path.rsplit("/", 1)[-1].lower()
    if any(fnmatch.fnmatchcase(name, p) for p in SAFE_FILE_PATTERNS):
        return False
    if any(fnmatch.fnmatchcase(name, p) for p in SECRET_FILE_PATTERNS):
        return True
    parts = rel_path.lower().split("/")
    return ".ssh" in parts[:-1] or (".aws" in parts[:-1] and name in ("credentials", "config"))


def is_secret_env_name(name: str) -> bool:
    return name.upper() in KNOWN_SECRET_ENVS or bool(_SECRET_ENV_RE.search(name))
