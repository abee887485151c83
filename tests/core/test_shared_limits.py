"""Limits are counted once for the whole shop, however many web processes serve it: two real
web processes (gunicorn), each with its own memory, share one database and one Redis cache."""

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import ScryptPasswordHasher  # type: ignore[attr-defined]  # missing from django-stubs

from tests.factories import PASSWORD, UserFactory
from tests.notifications.test_order_emails_saga import free_port
from tests.worker import ROOT, _die_with_parent, database_url

# Each pytest-xdist worker has its Redis databases (config/settings/test.py); this one is its
# result backend's, where the throttles' keys (``:1:throttle_login_<address>``) meet nothing.
CACHE_DB = int(os.environ.get("SHOP_TEST_REDIS_BASE", "2")) + 1 + 2 * int(settings.TEST_WORKER.removeprefix("gw"))


class WebProcess:
    """A gunicorn process on a free port, as production runs the web, with its own memory."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        untraced = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1"],
            cwd=ROOT, env=untraced | env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.answers():
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                return bool(response.status in (200, 503))
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def login(self, username: str, password: str, client: str) -> int:
        """``POST /api/auth/token/`` as ``client`` (the address our trusted proxy reports)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/auth/token/",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json", "X-Forwarded-For": client},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def two_web_processes(transactional_db, tmp_path) -> Iterator[tuple[WebProcess, WebProcess]]:
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": database_url(),
        "CACHE_URL": f"redis://127.0.0.1:6379/{CACHE_DB}",
        "RATE_LIMITS": "on",
        # the test speaks for many clients through one trusted proxy: itself
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    first = WebProcess(tmp_path / "web-1.log", env)
    try:
        second = WebProcess(tmp_path / "web-2.log", env)
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def attempts_until_refused(logins: Iterator[int], most: int = 25) -> int | None:
    """Which attempt (1-based) first got a 429, or None if none of ``most`` did."""
    for attempt, status in zip(range(1, most + 1), logins, strict=False):
        assert status in (200, 429), status
        if status == 429:
            return attempt
    return None


def test_a_login_limit_is_counted_across_web_processes(two_web_processes):
    first, second = two_web_processes
    # a customer whose password the production hashers check (the test profile's MD5 is not among them)
    scrypt = ScryptPasswordHasher()
    customer = UserFactory()
    customer.password = scrypt.encode(PASSWORD, scrypt.salt())
    customer.save(update_fields=["password"])
    # two clients, new to this Redis whatever ran before (the limit is per client address)
    alone, spread = (f"198.51.100.{random.randint(1, 254)}", f"203.0.113.{random.randint(1, 254)}")

    def logins(processes: list[WebProcess], client: str) -> Iterator[int]:
        attempt = 0
        while True:
            yield processes[attempt % len(processes)].login(customer.username, PASSWORD, client)
            attempt += 1

    # when one client logs in again and again on one process, and another alternates between both
    against_one = attempts_until_refused(logins([first], alone))
    across_two = attempts_until_refused(logins([first, second], spread))

    # then both are refused at the same attempt: the 11th (login: 10/minute per client), not the 21st
    assert against_one == 11
    assert across_two == against_one
