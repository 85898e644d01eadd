# -*- test-case-name: tests.test_store_layout -*-
"""
The graph's layout in the node's database (migration 4): a position per
node id, and which store state the last relayout showed, so that positions
survive a restart and a restart knows whether a relayout is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs
from twisted.internet.defer import Deferred

from xmppnetgraph.layout.place import Point
from xmppnetgraph.store.database import currentTime

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from xmppnetgraph.store.database import Cursor, Database


@attrs.frozen
class StoredLayout:
    """
    The stored layout.

    @ivar positions: a position per node id.
    @ivar lastEventId: the store's newest event id that the last relayout
        saw, or L{None} if none was saved yet.
    @ivar laidOut: when the last relayout was saved, or L{None}.
    """

    positions: Mapping[str, Point]
    lastEventId: int | None
    laidOut: float | None


def _load(cursor: Cursor) -> StoredLayout:
    positions = {
        str(node): (float(x), float(y))
        for node, x, y in cursor.execute("SELECT node, x, y FROM graph_layout").fetchall()
    }
    row = cursor.execute(
        "SELECT last_event_id, laid_out FROM graph_layout_state WHERE id = 1"
    ).fetchone()
    if row is None:
        return StoredLayout(positions, None, None)
    return StoredLayout(positions, int(row[0]), float(row[1]))


def _save(cursor: Cursor, positions: Mapping[str, Point], lastEventId: int, now: float) -> None:
    cursor.executemany(
        "INSERT INTO graph_layout (node, x, y, laid_out) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (node) DO UPDATE"
        " SET x = excluded.x, y = excluded.y, laid_out = excluded.laid_out",
        [(node, x, y, now) for node, (x, y) in positions.items()],
    )
    cursor.execute(
        "INSERT INTO graph_layout_state (id, last_event_id, laid_out, nodes) VALUES (1, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET last_event_id = excluded.last_event_id,"
        " laid_out = excluded.laid_out, nodes = excluded.nodes",
        (lastEventId, now, len(positions)),
    )


class LayoutStore:
    """
    The layout tables of the node's L{Database}.
    """

    def __init__(self, database: Database, clock: IReactorTime | None = None) -> None:
        """
        @param clock: the source of the timestamps (default: the global
            reactor, looked up on first use).
        """
        self._database = database
        self._clock = clock

    def load(self) -> Deferred[StoredLayout]:
        """
        @return: the stored layout.
        """
        return self._database.runInteraction(_load)

    def save(self, positions: Mapping[str, Point], lastEventId: int) -> Deferred[None]:
        """
        Store the positions of one relayout, in one transaction: they
        replace those of the same nodes; other nodes keep theirs.

        @param lastEventId: the store's newest event id the relayout saw.
        """
        return self._database.runInteraction(
            _save, positions, lastEventId, currentTime(self._clock)
        )
