"""Memos under $LOSSNETS_HOME: small JSON files of values that are slow to compute and fixed by their key."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .atomic import atomic_write_text


def lossnets_home() -> Path:
    """Where lossnets keeps its own files: $LOSSNETS_HOME, else ~/.cache/lossnets."""
    return Path(os.environ.get("LOSSNETS_HOME") or Path.home() / ".cache" / "lossnets")


def _read(name: str) -> dict:
    try:
        return json.loads((lossnets_home() / f"{name}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def memo_get(name: str, key: str):
    """The value memoised under ``key`` in memo ``name``, or None."""
    return _read(name).get(key)


def memo_put(name: str, key: str, value) -> None:
    """Add one value to memo ``name`` (atomic replace; a lost race only costs a recomputation)."""
    memo = _read(name)
    memo[key] = value
    atomic_write_text(lossnets_home() / f"{name}.json", json.dumps(memo))
