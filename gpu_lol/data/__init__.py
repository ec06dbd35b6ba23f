"""Data files shipped with the package (GPU catalog, model table, images), loaded once."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.lru_cache(maxsize=None)
def load_yaml(name: str) -> Any:
    import yaml

    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@functools.lru_cache(maxsize=None)
def load_json(name: str) -> Any:
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)
