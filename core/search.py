"""How much a search may ask for: the API's ``?search=`` and the admin's ``?q=`` share these bounds.

Each word of a search costs a ``LIKE`` per searched field and row, and the words are joined by
``AND``: a thousand of them overflowed SQLite's expression depth ("Expression tree is too
large", a 500) and cost PostgreSQL as much. Words past ``SEARCH_MAX_TERMS`` are left out and
longer ones cut to ``SEARCH_MAX_TERM_LENGTH`` characters; nothing a person types into a search
box comes near either.
"""

from collections.abc import Iterable

SEARCH_MAX_TERMS = 10
SEARCH_MAX_TERM_LENGTH = 100


def search_terms_bound(terms: Iterable[str]) -> tuple[list[str], bool]:
    """The first ``SEARCH_MAX_TERMS`` of ``terms``, each cut to ``SEARCH_MAX_TERM_LENGTH``
    characters, and whether anything was left out."""
    given = list(terms)
    kept = [term[:SEARCH_MAX_TERM_LENGTH] for term in given[:SEARCH_MAX_TERMS]]
    return kept, len(given) > SEARCH_MAX_TERMS or any(len(term) > SEARCH_MAX_TERM_LENGTH for term in given)
