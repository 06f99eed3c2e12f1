"""Reading torch.save'd files (weights, lin weights) with one-line errors that name the file and what it should
hold, instead of the unpickler's traceback."""
from __future__ import annotations

from pathlib import Path

import torch


def load_torch_file(path, expected: str):
    """``torch.load(path, map_location="cpu", weights_only=True)``; a file that is not a readable
    torch.save'd file of tensors is a ValueError naming ``path`` and ``expected`` (what the file should hold)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # a missing or unreadable file says so itself
    except Exception as e:  # garbage bytes fail anywhere in the unpickler: KeyError, EOFError, RuntimeError ...
        first = f"{type(e).__name__}: {str(e).strip()}".splitlines()[0]
        size = Path(path).stat().st_size
        raise ValueError(f"{path} ({size} bytes) is not a readable torch.save'd file of tensors (expected "
                         f"{expected}): {first[:160]}") from e
