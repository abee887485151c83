"""Card data never comes in: a payment token carrying a card number is refused (contract §6)."""

import re

from django.core.exceptions import ValidationError

# A run of 13 to 19 digits (a card number's length), alone or split by spaces, dashes, dots or
# underscores as people write them: "tok_4111111111111111", "tok_4111_1111_1111_1111". A
# longer run holds one of that length too.
CARD_NUMBER_RUN = re.compile(r"\d(?:[\s._-]?\d){12,}")

CARD_DATA_REFUSED = "Send a payment token from the payment provider (tok_…), never card data."


def validate_no_card_number(value: str) -> None:
    if CARD_NUMBER_RUN.search(value):
        raise ValidationError(CARD_DATA_REFUSED, code="card_number")
