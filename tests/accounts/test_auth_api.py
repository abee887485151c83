import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from tests.factories import PASSWORD, UserFactory


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
    ("body", "field"),
    [
        ({"username": "bob", "email": "bob@example.com", "password": "123"}, "password"),
        ({"username": "bob", "email": "bob@example.com", "password": "password"}, "password"),
        ({"username": "bob", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"username": "taken", "email": "t@example.com", "password": PASSWORD}, "username"),
        ({"username": "TAKEN", "email": "t@example.com", "password": PASSWORD}, "username"),
    ],
)
def test_weak_or_duplicate_registrations_are_a_400(anonymous, db, body, field):
    UserFactory(username="taken")
    response = anonymous.post("/api/auth/register/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert User.objects.count() == 1


def test_token_login(anonymous, customer):
    good = anonymous.post("/api/auth/token/", {"username": customer.username, "password": PASSWORD}, format="json")
    assert good.status_code == 200 and len(good.json()["token"]) == 40
    bad = anonymous.post("/api/auth/token/", {"username": customer.username, "password": "wrong"}, format="json")
    assert bad.status_code == 400


def test_a_burst_of_failed_logins_is_throttled_with_retry_after(anonymous, customer, settings):
    # given rate limits on, as in production
    settings.RATE_LIMITS = True
    cache.clear()
    body = {"username": customer.username, "password": "wrong"}
    statuses = [anonymous.post("/api/auth/token/", body, format="json").status_code for _ in range(11)]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    throttled = anonymous.post("/api/auth/token/", body, format="json")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0


def test_registration_and_order_creation_have_their_own_limits(anonymous, api, settings, product):
    from tests.factories import order_body

    settings.RATE_LIMITS = True
    cache.clear()
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
    cache.clear()
    body = {"username": customer.username, "password": "wrong"}
    assert {anonymous.post("/api/auth/token/", body, format="json").status_code for _ in range(15)} == {400}
