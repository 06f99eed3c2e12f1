"""The study's Table III attributes (skip connections, branching, 1x1 convolutions, batch norm) for every torchvision
classifier, read from data/zoo_attributes.csv with the csv module alone (no torch). How each is decided:
engine/data/make_attributes.py, which writes the file.
"""
from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

ATTRIBUTES = ("skip_connections", "branching", "conv1x1", "batch_norm")
PATH = Path(__file__).parent / "data" / "zoo_attributes.csv"


@cache
def zoo_attributes() -> dict[str, dict[str, bool]]:
    """Per architecture (torchvision's order) its attributes as booleans."""
    with open(PATH, newline="") as f:
        return {r["arch"]: {a: r[a] == "True" for a in ATTRIBUTES} for r in csv.DictReader(f)}


def attributes(arch: str) -> dict[str, bool]:
    """One architecture's attributes (its canonical name); raises ValueError naming the file for an unknown one."""
    table = zoo_attributes()
    if arch not in table:
        raise ValueError(f"{arch!r} has no row in {PATH}; it holds {', '.join(table)}")
    return table[arch]
