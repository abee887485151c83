"""``PAYMENT_PROVIDER`` names the provider; ``stripe`` without its key stops start-up (§4b)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from payments.checks import payment_provider_check
from payments.providers import SimulatedPaymentProvider, get_payment_provider
from payments.stripe_provider import StripePaymentProvider

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_provider():
    get_payment_provider.cache_clear()
    yield
    get_payment_provider.cache_clear()


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("simulated", SimulatedPaymentProvider),
        ("payments.providers.SimulatedPaymentProvider", SimulatedPaymentProvider),
        ("stripe", StripePaymentProvider),
        ("payments.stripe_provider.StripePaymentProvider", StripePaymentProvider),
    ],
)
def test_the_provider_by_name_or_dotted_path(settings, name, provider):
    settings.PAYMENT_PROVIDER = name
    settings.STRIPE_API_KEY = "sk_test_x"
    assert isinstance(get_payment_provider(), provider)
    assert payment_provider_check() == [] or all(isinstance(m, Warning) for m in payment_provider_check())


def test_the_stripe_client_never_retries_and_has_timeouts(settings):
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_API_KEY = "sk_test_x"
    settings.STRIPE_API_BASE = "http://127.0.0.1:8420"
    settings.STRIPE_CONNECT_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_TIMEOUT_SECONDS = 1.5
    provider = get_payment_provider()
    assert isinstance(provider, StripePaymentProvider)
    options = provider.client._requestor._options
    assert (options.base_addresses["api"], options.max_network_retries) == ("http://127.0.0.1:8420", 0)
    assert provider.client._requestor._client._timeout == (0.5, 1.5)


def test_stripe_without_a_key_fails_the_check(settings):
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_API_KEY = ""
    found = payment_provider_check()
    assert [m.id for m in found if isinstance(m, Error)] == ["payments.E002"]
    with pytest.raises(SystemCheckError, match="STRIPE_API_KEY is not set"):
        call_command("check")


def test_an_unknown_provider_fails_the_check(settings):
    settings.PAYMENT_PROVIDER = "paypal"
    assert [m.id for m in payment_provider_check()] == ["payments.E001"]


def test_start_up_stops_with_a_clear_message_without_the_key():
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    env |= {"PAYMENT_PROVIDER": "stripe", "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "PAYMENT_PROVIDER is stripe but STRIPE_API_KEY is not set" in result.stderr


def test_a_worker_without_the_key_does_not_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    env |= {"PAYMENT_PROVIDER": "stripe", "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", "nothing-here"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "PAYMENT_PROVIDER is stripe but STRIPE_API_KEY is not set" in result.stdout + result.stderr
