"""Index changes that do not stop the shop's writes while a large table is indexed.

``django.contrib.postgres``' ``AddIndexConcurrently`` and ``RemoveIndexConcurrently`` build and
drop an index CONCURRENTLY, but fail on any other database; the embedded default (SQLite) must
migrate with the same files. These do the same on PostgreSQL and fall back to the plain
operation elsewhere (SQLite has no concurrent writers to keep going). A migration that uses
them sets ``atomic = False``, as PostgreSQL requires.
"""

from functools import partial
from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class _OnlineOnPostgres:
    """The concurrent operation (the class's first base) on PostgreSQL, ``plain`` elsewhere."""

    plain: Any

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        online = schema_editor.connection.vendor == "postgresql"
        forwards = super().database_forwards if online else partial(self.plain.database_forwards, self)  # type: ignore[misc]
        forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        online = schema_editor.connection.vendor == "postgresql"
        backwards = super().database_backwards if online else partial(self.plain.database_backwards, self)  # type: ignore[misc]
        backwards(app_label, schema_editor, from_state, to_state)


class AddIndexOnline(_OnlineOnPostgres, AddIndexConcurrently):
    plain = AddIndex


class RemoveIndexOnline(_OnlineOnPostgres, RemoveIndexConcurrently):
    plain = RemoveIndex
