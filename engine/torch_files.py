"""Reading torch.save'd files (weights, lin weights) with one-line errors that name the file and what it should
hold, instead of the unpickler's traceback."""
from __future__ import annotations

from pathlib import Path

import torch

from lossnets.errors import LossnetsError


class UnreadableFileError(LossnetsError, ValueError):
    """A file that should hold torch.save'd tensors but is not readable as such (the command line: exit 2)."""


def load_torch_file(path, expected: str):
    """``torch.load(path, map_location="cpu", weights_only=True)``; a file that is not a readable torch.save'd
    file of tensors is an UnreadableFileError (a ValueError) naming ``path`` and ``expected`` (what it should hold)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # a missing or unreadable file says so itself
    except Exception as e:  # garbage bytes fail anywhere in the unpickler: KeyError, EOFError, RuntimeError ...
        first = f"{type(e).__name__}: {str(e).strip()}".splitlines()[0]
        size = Path(path).stat().st_size
        raise UnreadableFileError(f"{path} ({size} bytes) is not a readable torch.save'd file of tensors "
                                  f"(expected {expected}): {first[:160]}") from e
