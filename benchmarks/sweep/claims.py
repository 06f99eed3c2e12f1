"""Claims: which process runs a cell, so that sweeps sharing a run folder (two machines over a shared filesystem,
or the same sweep started twice) run every cell once.

Before running a cell a worker claims it: a lease file beside the cell's file (``<layer>.claim``, see
``lossnets.cache.lease``) holding its owner and a heartbeat that a thread renews. A cell that is finished, or
claimed by a live owner, is left alone; a claim whose owner stopped beating (killed, its machine lost) is taken
over after ``LOSSNETS_LEASE_STALE_S`` seconds (60), and at once when the owner was a process of this host that has
ended. A claim is removed once its cell's file or error record is written.
"""
from __future__ import annotations

from fsspec.implementations.local import LocalFileSystem

from lossnets.cache.lease import Lease

from .cells import RunFolder
from .plan import Cell


class Claims:
    """The claims this process holds in one run folder."""

    def __init__(self, folder: RunFolder):
        self.folder, self.fs = folder, LocalFileSystem()
        self.held: dict[Cell, Lease] = {}

    def _lease(self, cell: Cell) -> Lease:
        return Lease(self.fs, str(self.folder.cell_path(cell).with_suffix(".claim")))

    def take(self, cells: list[Cell]) -> list[Cell]:
        """Claim what can be claimed of ``cells``: those not finished and not claimed by a live owner."""
        mine = []
        for c in cells:
            if self.folder.finished(c):
                continue
            lease = self._lease(c)
            lease.fs.makedirs(str(self.folder.cell_path(c).parent), exist_ok=True)
            if lease.try_acquire():
                if self.folder.finished(c):  # finished by the owner of a claim released since we looked
                    lease.release()
                    continue
                self.held[c], mine = lease, mine + [c]
        return mine

    def release(self, cells: list[Cell]) -> None:
        for c in cells:
            lease = self.held.pop(c, None)
            if lease is not None:
                lease.release()

    def busy(self, cells: list[Cell]) -> list[Cell]:
        """The unfinished ``cells`` that a live owner (not this object) holds."""
        return [c for c in cells if c not in self.held and not self.folder.finished(c)
                and self._lease(c).held_by_another()]
