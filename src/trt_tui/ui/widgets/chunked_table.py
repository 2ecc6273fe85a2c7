"""A DataTable that takes big row sets in chunks, so the event loop never stalls on width measuring.

DataTable measures every new cell on idle: 5,000 rows added at once froze the loop for about a second
(research/textual.md). `load()` adds CHUNK rows, then yields until the table has measured them; a newer
`load()` abandons an older one (generation counter), so typing into a filter never queues stale work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from textual.widgets import DataTable

CHUNK = 250


class ChunkedTable(DataTable):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(*args, **kwargs)
        self._generation = 0
        self.loading_rows = False

    async def load(self, rows: Sequence[tuple[str, Sequence]], *, keep_cursor_key: str | None = None) -> bool:
        """Replace all rows with `rows` ((key, cells) pairs). Returns False when a newer load took over."""
        self._generation += 1
        generation = self._generation
        self.clear()
        self.loading_rows = True
        try:
            for start in range(0, len(rows), CHUNK):
                if generation != self._generation:
                    return False
                for key, cells in rows[start : start + CHUNK]:
                    self.add_row(*cells, key=key)
                if start + CHUNK < len(rows):
                    await self.settle()
            if keep_cursor_key is not None:
                self.move_to_key(keep_cursor_key)
            return generation == self._generation
        finally:
            if generation == self._generation:
                self.loading_rows = False

    async def append(self, rows: Iterable[tuple[str, Sequence]]) -> None:
        """Add rows at the end (a live feed); the caller batches, this measures them chunk by chunk."""
        batch = list(rows)
        for start in range(0, len(batch), CHUNK):
            for key, cells in batch[start : start + CHUNK]:
                self.add_row(*cells, key=key)
            if start + CHUNK < len(batch):
                await self.settle()

    async def settle(self) -> None:
        """Yield to the loop until this table's pending measurements are done (its idle handler ran)."""
        for _ in range(50):
            await asyncio.sleep(0)
            if not self._require_update_dimensions:
                return
            await asyncio.sleep(0.001)

    def move_to_key(self, key: str) -> None:
        try:
            row = self.get_row_index(key)
        except Exception:  # the row is not shown (filtered out): keep the cursor where it is
            return
        self.move_cursor(row=row, animate=False)
