"""The embedded default's result backend: django-celery-results', without a chord counter
that nothing would ever read or delete.

Celery hands a chord to the result backend twice: when the chord is published
(``apply_chord``: django-celery-results inserts a ``ChordCounter`` row holding the number of
header tasks) and as each header task returns (``on_chord_part_return``: the count goes down,
and the last task deletes the row and sends the body). The saga's chord (``orders/saga.py``:
reserve every line, then charge) joins in the saga's step log instead, so that the charge goes
out through the outbox like every other message: ``sagas/hops.py`` takes the chord off each
line's request, and Celery never calls ``on_chord_part_return``. So the row inserted at publish
stayed for as long as the database lived: one per orchestrated order of two lines or more.

Redis's backend keeps only the chord's size at publish, under a key that expires with the
results (``CELERY_RESULT_EXPIRES``, a day): nothing stays for good, so it runs as Celery ships
it. The settings pick this backend for ``CELERY_RESULT_BACKEND=django-db``.
"""

from typing import Any

from django_celery_results.backends import DatabaseBackend as ResultsInTheDatabase


class DatabaseBackend(ResultsInTheDatabase):
    def apply_chord(self, header_result_args: Any, body: Any, **kwargs: Any) -> None:
        """Nothing to count: the saga joins its chord in its own step log (see the module)."""
