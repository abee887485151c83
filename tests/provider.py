"""Which payment provider the tests charge through.

The simulated provider by default; with ``SHOP_TEST_PAYMENT_PROVIDER=stripe`` (``make
test-stripe``) the session starts one localstripe and the test process and every saga worker
it starts charge through it (``tests/conftest.py``). The simulated test tokens that Stripe has a
test PaymentMethod for are mapped onto it; a test whose fault only the simulated provider can
make is marked ``simulated_only`` and skipped, naming the Stripe test that covers the case.
"""

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.payments.stripe_server import LocalStripe

STRIPE = os.environ.get("SHOP_TEST_PAYMENT_PROVIDER", "simulated") == "stripe"

# Stripe's test PaymentMethods (docs/stripe.md) for the simulated provider's plain outcomes.
STRIPE_TOKENS = {
    "tok_visa": "pm_card_visa",
    "tok_mastercard_debit": "pm_card_visa",
    "tok_decline": "pm_card_chargeCustomerFail",
}

# The session's localstripe under the switch (set by ``tests/conftest.py``), else ``None``.
localstripe_server: "LocalStripe | None" = None


def payment_token(token: str) -> str:
    """``token`` as the provider under test takes it."""
    return STRIPE_TOKENS.get(token, token) if STRIPE else token


def simulated_only(fault: str, *, stripe: str) -> pytest.MarkDecorator:
    """A test of ``fault``, which only the simulated provider can make; ``stripe`` names the
    Stripe test that covers the case instead (skipped under the switch, saying so)."""
    return pytest.mark.simulated_only(fault=fault, stripe=stripe)


def skip_reason(mark: pytest.Mark) -> str:
    return f"only the simulated provider can make {mark.kwargs['fault']}; under Stripe: {mark.kwargs['stripe']}"


# The simulated provider's faults, each with the Stripe test that covers its case.
FAKE = "tests/payments/test_stripe_http_fake.py"
SAGA = "tests/payments/test_stripe_saga.py"
FLAKY = simulated_only(
    "tok_flaky (unavailable twice, then a success)",
    stripe=f"{FAKE}::test_errors_mean_what_they_say (429, 5xx: transient), "
    f"{SAGA}::test_stripe_killed_and_restarted_mid_saga (retried until Stripe is back)",
)
TIMEOUT = simulated_only(
    "tok_timeout (charged, the reply lost)",
    stripe=f"{FAKE}::test_a_create_whose_reply_was_lost_is_found_again_by_its_key, "
    f"::test_a_confirm_whose_reply_was_lost_is_not_sent_twice",
)
DOWN = simulated_only(
    "tok_down (unavailable on every attempt)",
    stripe=f"{FAKE}::test_stripe_unreachable_is_transient, ::test_errors_mean_what_they_say",
)
REFUND_FAILS = simulated_only(
    "tok_refund_fails (refunds never succeed)",
    stripe="localstripe never fails a refund; the nearest case, a call Stripe refuses parking the order "
    f"for staff, is {SAGA}::test_a_key_stripe_refuses_parks_the_order_for_staff_who_settle_it_once_fixed",
)
SLOW = simulated_only(
    "tok_slow / SIMULATED_LATENCY_SECONDS (a charge slower than its lease)",
    stripe=f"{SAGA}::test_stripe_frozen_past_every_timeout_then_resumed; make chaos-stripe's slow rows",
)
HELD_UP = simulated_only(
    "SIMULATED_NETWORK_DELAY_SECONDS (a payment request held up past its lease)",
    stripe=f"{SAGA}::test_stripe_frozen_past_every_timeout_then_resumed; make chaos-stripe's held-up row",
)
FORGED_LEDGER = simulated_only(
    "a ledger row written by the test (ProviderTransaction)",
    stripe=f"{SAGA}::test_a_success_stripe_reports_after_the_order_was_cancelled_is_refunded",
)

TOKEN_FAULTS = {
    "tok_flaky": FLAKY,
    "tok_timeout": TIMEOUT,
    "tok_down": DOWN,
    "tok_refund_fails": REFUND_FAILS,
    "tok_slow": SLOW,
}


def token_params(rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Parameters whose first value is a payment token, each marked with its fault if only the
    simulated provider makes it."""
    return [pytest.param(*row, marks=[TOKEN_FAULTS[row[0]]] if row[0] in TOKEN_FAULTS else []) for row in rows]


def has_token(token: str) -> bool:
    """Whether the provider under test has this test token (Stripe has no faulty ones)."""
    return not (STRIPE and token in TOKEN_FAULTS)


def provider_mix(rows: Sequence[Sequence[Any]]) -> list[Any]:
    """A batch's mix of (token, …) rows: under Stripe, only the tokens Stripe has."""
    return [row for row in rows if has_token(row[0])]
