import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[2]


def test_register_returns_a_token_that_authenticates(anonymous, db):
    response = anonymous.post(
        "/api/auth/register/", {"username": "ada", "email": "ada@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {"id", "username", "token"} and data["username"] == "ada"
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {data['token']}")
    assert anonymous.get("/api/orders/").status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"username": "bob", "email": "bob@example.com", "password": "123"}, "password", "password_too_short"),
        ({"username": "bob", "email": "bob@example.com", "password": "password"}, "password", "password_too_common"),
        ({"username": "bob", "email": "not-an-email", "password": PASSWORD}, "email", "invalid"),
        ({"username": "taken", "email": "t@example.com", "password": PASSWORD}, "username", "username_taken"),
        ({"username": "TAKEN", "email": "t@example.com", "password": PASSWORD}, "username", "username_taken"),
    ],
)
def test_weak_or_duplicate_registrations_are_a_400(anonymous, db, body, field, code):
    UserFactory(username="taken")
    response = anonymous.post("/api/auth/register/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert code in [error["code"] for error in response.json()["errors"][field]]
    assert User.objects.count() == 1


def test_token_login(anonymous, customer):
    good = anonymous.post("/api/auth/token/", {"username": customer.username, "password": PASSWORD}, format="json")
    assert good.status_code == 200 and len(good.json()["token"]) == 64
    bad = anonymous.post("/api/auth/token/", {"username": customer.username, "password": "wrong"}, format="json")
    assert bad.status_code == 400


def test_a_burst_of_failed_logins_is_throttled_with_retry_after(anonymous, customer, rate_limits):
    # given rate limits on, as in production
    body = {"username": customer.username, "password": "wrong"}
    statuses = [anonymous.post("/api/auth/token/", body, format="json").status_code for _ in range(11)]
    # the tenth failure locks the client out (django-axes), and the throttle holds it there
    assert statuses[:9] == [400] * 9
    assert statuses[9:] == [429, 429]
    throttled = anonymous.post("/api/auth/token/", {"username": customer.username, "password": PASSWORD}, format="json")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert throttled.json()["detail"].startswith("Request was throttled")
    assert throttled.json()["code"] == "throttled"


def test_registration_and_order_creation_have_their_own_limits(anonymous, api, rate_limits, product):
    from tests.factories import order_body

    statuses = [
        anonymous.post(
            "/api/auth/register/", {"username": f"u{i}", "email": f"u{i}@x.io", "password": PASSWORD}, format="json"
        ).status_code
        for i in range(21)
    ]
    assert statuses[-1] == 429 and statuses[:20] == [201] * 20
    orders = [api.post("/api/orders/", order_body(product), format="json").status_code for _ in range(31)]
    assert orders[-1] == 429 and orders[:30] == [201] * 30


def test_rate_limits_off_lets_load_tests_through(anonymous, customer, settings):
    settings.RATE_LIMITS = False
    settings.AXES_ENABLED = False
    cache.clear()
    body = {"username": customer.username, "password": "wrong"}
    assert {anonymous.post("/api/auth/token/", body, format="json").status_code for _ in range(15)} == {400}


def test_rate_limits_off_turns_off_the_login_lockouts_too():
    code = "from django.conf import settings; print(settings.RATE_LIMITS, settings.AXES_ENABLED)"
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    ran = [
        subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            cwd=ROOT,
            env=env | {"RATE_LIMITS": value},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for value in ("on", "off")
    ]
    assert ran == [["True", "True"], ["False", "False"]]
