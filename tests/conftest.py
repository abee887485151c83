from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from payments.providers import get_payment_provider
from tests import provider
from tests.factories import ProductFactory, StaffFactory, UserFactory

if TYPE_CHECKING:  # imported where used: tests.worker is a plugin, loaded (and rewritten) by pytest
    from tests.payments.stripe_server import LocalStripe

pytest_plugins = ["tests.worker"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not provider.STRIPE:
        return
    for item in items:
        mark = item.get_closest_marker("simulated_only")
        if mark is not None:
            item.add_marker(pytest.mark.skip(reason=provider.skip_reason(mark)))


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator["LocalStripe"]:
    """localstripe as its own process on a free port, for the whole session."""
    from tests.payments.stripe_server import LocalStripe

    server = LocalStripe(Path(tmp_path_factory.mktemp("localstripe")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True, scope="session")
def _payment_provider(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under ``SHOP_TEST_PAYMENT_PROVIDER=stripe`` (tests/provider.py), this process and every
    saga worker it starts charge through the session's localstripe."""
    from tests.worker import WORKER_ENV

    if not provider.STRIPE:
        yield
        return
    server: LocalStripe = request.getfixturevalue("localstripe")
    saved = dict(WORKER_ENV)
    WORKER_ENV.update(server.worker_env())
    provider.localstripe_server = server
    with override_settings(**server.django_settings()):
        get_payment_provider.cache_clear()
        yield
    get_payment_provider.cache_clear()
    provider.localstripe_server = None
    WORKER_ENV.clear()
    WORKER_ENV.update(saved)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploaded files of a test (product images) land in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def customer(db):
    return UserFactory()


@pytest.fixture
def api(customer) -> APIClient:
    """An API client signed in as ``customer`` with a real token."""
    from accounts.services import user_token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user_token(user=customer)}")
    return client


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def staff_api(staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def rate_limits(settings):
    """The limits on, as in production (the test settings turn them off)."""
    from django.core.cache import cache

    settings.RATE_LIMITS = True
    settings.AXES_ENABLED = True
    cache.clear()


@pytest.fixture
def product(db):
    return ProductFactory()


@pytest.fixture
def run_outbox():
    """Runs the outbox's unsent messages for one task in this process, as a worker would (most
    tests run no worker), and marks them sent. Returns how many ran. A test whose rows commit
    (``live_server``, ``transactional_db``) also asks for ``no_relay``, or the session's worker
    may send them first."""
    from celery import signature
    from django.utils import timezone

    from config.celery import app
    from outbox.models import OutboxMessage

    app.loader.import_default_modules()  # every app's tasks, as a worker registers them

    def run(task: str) -> int:
        rows = list(OutboxMessage.objects.filter(name=task, sent_at=None).order_by("id"))
        for row in rows:
            signature(row.message).apply().get()
        OutboxMessage.objects.filter(pk__in=[row.pk for row in rows]).update(sent_at=timezone.now())
        return len(rows)

    return run
