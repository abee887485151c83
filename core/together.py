"""Rows written together: one ``INSERT`` per table for what a transaction writes in passing.

A saga step's transaction writes a journal line for each thing it does (the command it sends,
the status it moves to, the event it announces) and an outbox row for each message; one by
one, each is a round trip to the database. Inside ``together()``, ``insert`` holds such rows,
and the end of the block writes each table's rows in one statement, in the order they were
added, inside the transaction still (so they commit, or roll back, with it). Outside a block,
``insert`` writes at once, so a writer never needs to know whether its caller groups.

What waits must not be read before the block ends: only rows that nothing in the transaction
reads back belong here (journal lines, outbox rows), and their order is that of a column set
when they are made (the journal's ``created_at``, the outbox's ``available_at``), not their ids.
A row added inside a savepoint of the block is written at once (a savepoint that rolls back
takes it with it), what waited goes on waiting.

Why not a package: Django's ``bulk_create`` is the statement; what it lacks is holding rows
until the end of a block, a few lines that no maintained package offers on its own.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Model

ATTRIBUTE = "shop_rows_together"  # on the connection: one transaction's waiting rows


@dataclass
class _Waiting:
    depth: int  # the atomic blocks open where the group began: its rows belong to that level
    rows: list[Model] = field(default_factory=list)


@contextmanager
def together() -> Iterator[None]:
    """Hold what ``insert`` is given until the block ends, then write it, one statement per table.
    Call it inside the transaction (``with transaction.atomic(), together():``); nested, it
    joins the group already open."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("together() belongs inside the transaction whose rows it writes")
    if getattr(connection, ATTRIBUTE, None) is not None:
        yield
        return
    waiting = _Waiting(depth=len(connection.atomic_blocks))
    setattr(connection, ATTRIBUTE, waiting)
    try:
        yield
    finally:
        setattr(connection, ATTRIBUTE, None)
    _write(waiting.rows)  # only on a block that ended normally: an exception skips it


def insert(*rows: Model) -> None:
    """Write ``rows`` (new, unsaved), at the end of the ``together()`` block around the caller,
    or at once; their primary keys are set once written."""
    connection = transaction.get_connection()
    waiting: _Waiting | None = getattr(connection, ATTRIBUTE, None)
    # No block, or inside a savepoint of one (the row goes with the savepoint): at once.
    if waiting is None or len(connection.atomic_blocks) != waiting.depth:
        _write(list(rows))
    else:
        waiting.rows.extend(rows)


def _write(rows: list[Model]) -> None:
    by_model: dict[type[Model], list[Model]] = {}
    for row in rows:
        by_model.setdefault(type(row), []).append(row)
    bulk = transaction.get_connection().features.can_return_rows_from_bulk_insert
    for model, group in by_model.items():
        if bulk:
            model._default_manager.bulk_create(group)
        else:  # SQLite before 3.35 gives a multi-row INSERT no ids back: one INSERT each
            for row in group:
                row.save(force_insert=True)
