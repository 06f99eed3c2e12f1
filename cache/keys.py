"""Entry keys: everything that determines a tap's features, hashed into the entry's name.

One entry holds one tap of one loss network over one dataset; its items are addressed by id. The key
is architecture, tap (letter and module path), the tap's digest (sha256 of the parameters and buffers its
output depends on: the network cut at that tap, whatever other taps are asked with it; see
``lossnets.engine.digests``), preprocessing (the caller's description of how pixels were made, e.g. size
and resize filter, plus the net's input normalisation and autocast), dataset, storage dtype and engine
version. Any change gives another name, so a change is a miss; the full key is also stored in the entry
and checked on open. Entries written under other key fields (lossnets 0.1.0 keyed a tap by the digest of
the whole loaded prefix, which changed with the deepest tap asked) are never opened: ``is_current``
tells them apart and ``lossnets cache verify`` reports them as stale.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from functools import cached_property

DTYPES = ("fp16", "bf16", "fp32")


def canonical(value) -> str:
    """A stable string for a preprocessing description (str, or a JSON-able dict)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class EntryKey:
    arch: str
    layer: str
    module: str
    tap_digest: str
    preprocessing: str
    normalize: str
    amp: str
    dataset: str
    dtype: str
    engine_version: str

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @cached_property
    def name(self) -> str:
        """Entry path inside the cache root: ``dataset/arch/layer-<hash>``."""
        safe = lambda s: re.sub(r"[^A-Za-z0-9._-]+", "_", s)  # noqa: E731
        return f"{safe(self.dataset)}/{safe(self.arch)}/{safe(self.layer)}-{self.digest[:16]}"

    def to_dict(self) -> dict:
        return asdict(self)


def is_current(key: dict) -> bool:
    """Whether a stored key (an entry's meta.json) has this version's fields; entries that do not are stale."""
    return set(key) == {f.name for f in fields(EntryKey)}


def storage_dtype(net, dtype: str | None = None) -> str:
    """The dtype features of ``net`` are stored in: ``dtype``, or (None) bf16 under bf16 autocast, else fp16."""
    dtype = dtype or ("bf16" if net.amp == "bf16" else "fp16")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return dtype


def entry_keys(net, dataset: str, preprocessing="", dtype: str | None = None) -> dict[str, EntryKey]:
    """The key of each tap of ``net`` (a LossNetwork) for ``dataset`` (``dtype``: see storage_dtype)."""
    from lossnets import __version__

    dtype, digests = storage_dtype(net, dtype), net.tap_digests
    return {t.layer: EntryKey(arch=net.arch.name, layer=t.layer, module=t.module, tap_digest=digests[t.layer],
                              preprocessing=canonical(preprocessing), normalize=net.normalize, amp=str(net.amp),
                              dataset=dataset, dtype=dtype, engine_version=__version__)
            for t in net.taps}
