"""Usernames nobody may register: names of the system's own actors, and look-alikes of them.

The order timeline names who acted (a customer, staff, or the ``system`` / ``sweeper``); a
customer called ``system``, or ``admin`` spelt with a Cyrillic ``a`` (U+0430), must not be
mistaken for them.
A name is compared by its *skeleton*: NFKC-normalised (``admin`` in fullwidth letters is ``admin``), case-folded,
each character replaced by the Latin letter it is confusable with (Unicode's confusables data,
from the ``confusable-homoglyphs`` package), separators dropped and ``0``/``1``/``l`` folded
into the letters they pass for. Mixed-script names that mix in confusable letters are refused
outright, as django-registration does.
"""

import re
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables

REFUSAL = "This username is not available."

# Names of the shop's own actors (the journal's services, the sweeper) and the usual
# administrative and mail-role names.
RESERVED = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "superuser",
        "staff",
        "system",
        "sweeper",
        "support",
        "moderator",
        "security",
        "orders",
        "inventory",
        "payments",
        "shipping",
        "notifications",
        "shop",
        "webmaster",
        "postmaster",
        "hostmaster",
        "abuse",
        "noreply",
        "anonymous",
        "null",
        "none",
    }
)
# Refused wherever it appears in a name ("siteadmin", "admin_2", "the.admins").
RESERVED_ANYWHERE = ("admin",)

_SEPARATORS = str.maketrans("", "", "._-+@")
_LOOK_ALIKES = str.maketrans({"0": "o", "1": "i", "l": "i", "|": "i"})


_SMALL_CAPITAL = re.compile(r"^LATIN LETTER SMALL CAPITAL ([A-Z])$")


@lru_cache(maxsize=4096)
def _latin(character: str) -> str:
    """The ASCII letter ``character`` is confusable with, or ``character`` itself."""
    if character.isascii():
        return character
    found = confusables.is_confusable(character, greedy=True)
    for entry in found or []:
        for homoglyph in entry["homoglyphs"]:
            if len(homoglyph["c"]) == 1 and homoglyph["c"].isascii() and homoglyph["c"].isalnum():
                return str(homoglyph["c"]).lower()
    # Latin letters in another shape (U+1D00, a small capital A) are not in the confusables data: they are Latin.
    small_capital = _SMALL_CAPITAL.match(unicodedata.name(character, ""))
    return small_capital.group(1).lower() if small_capital else character


def skeleton(name: str) -> str:
    """What ``name`` looks like: the form two names that look alike share."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name).casefold())
    bare = "".join(character for character in text if not unicodedata.combining(character))  # á → a
    latin = "".join(_latin(character) for character in bare).translate(_SEPARATORS)
    # "staff2" is "staff" with a number, "adm1n" is "admin" in disguise.
    return latin.rstrip("0123456789").translate(_LOOK_ALIKES) + latin[len(latin.rstrip("0123456789")) :]


_RESERVED_SKELETONS = frozenset(skeleton(name) for name in RESERVED)


def username_refusal(name: str) -> str | None:
    """Why ``name`` cannot be registered, or None when it can."""
    normalized = unicodedata.normalize("NFKC", name)
    if confusables.is_dangerous(normalized):
        return REFUSAL
    shape = skeleton(name)
    if shape.rstrip("0123456789") in _RESERVED_SKELETONS:
        return REFUSAL
    if any(skeleton(word) in shape for word in RESERVED_ANYWHERE):
        return REFUSAL
    return None
