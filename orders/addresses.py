"""The shipping address an order takes: the one check of its postal code, for the API and the
checkout page alike."""

from core.addresses import postal_code_clean
from risk import providers as screening
from shipping import carriers

# The simulated providers' test values (contract §4, §4c) drive the carrier and the screening
# whatever the country, as a payment provider's test cards do whatever the card's country.
SIMULATED_POSTAL_CODES = frozenset((*carriers.TEST_POSTAL_CODES, *screening.TEST_POSTAL_CODES))


def shipping_postal_code_clean(*, country: str, postal_code: str) -> str:
    """``postal_code`` as ``country``'s post writes it (``core.addresses.postal_code_clean``), or
    ``ValidationError`` with the code ``invalid_postal_code``; a simulated provider's test value
    as it is, in any country. No side effects."""
    if postal_code.strip() in SIMULATED_POSTAL_CODES:
        return postal_code.strip()
    return postal_code_clean(country=country, postal_code=postal_code)
