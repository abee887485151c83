"""System checks of the payment settings (``manage.py check``, before ``migrate``, ``runserver``
and the worker's start): a provider that cannot work stops start-up, never a 500 at the first order."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from payments.providers import payment_provider_path


@checks.register(checks.Tags.compatibility)
def payment_provider_check(
    *, app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    try:
        import_string(payment_provider_path())
    except ImportError as exc:
        return [
            checks.Error(
                f"PAYMENT_PROVIDER is {settings.PAYMENT_PROVIDER!r}, which names no provider: {exc}",
                hint="Set it to simulated, stripe, or a provider class's dotted path.",
                id="payments.E001",
            )
        ]
    if settings.PAYMENT_PROVIDER != "stripe" and not payment_provider_path().endswith(".StripePaymentProvider"):
        return []
    found: list[checks.CheckMessage] = []
    if not settings.STRIPE_API_KEY:
        found.append(
            checks.Error(
                "PAYMENT_PROVIDER is stripe but STRIPE_API_KEY is not set: no order could be charged.",
                hint="Set STRIPE_API_KEY to the account's secret key (sk_test_… in test mode), from the environment.",
                id="payments.E002",
            )
        )
    if not settings.STRIPE_API_BASE.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        found.append(
            checks.Error(
                "STRIPE_API_BASE must be an https:// address (or a local test server on 127.0.0.1).",
                id="payments.E003",
            )
        )
    if not settings.STRIPE_WEBHOOK_SECRET:
        found.append(
            checks.Warning(
                "PAYMENT_PROVIDER is stripe but STRIPE_WEBHOOK_SECRET is not set: every webhook is refused (400).",
                hint="Set it to the webhook endpoint's signing secret (whsec_…).",
                id="payments.W001",
            )
        )
    return found
