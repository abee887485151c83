"""Every limit holds: a client is who the trusted proxies say it is, the web forms count with
the API, and failed logins lock out the client that made them, never the account (contract §3)."""

from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from core.clients import client_ip
from orders.models import Order
from tests.factories import PASSWORD, StaffFactory, UserFactory, address, order_body

WRONG = "not-the-password"


def token_login(client, username, password=WRONG, **headers):
    return client.post("/api/auth/token/", {"username": username, "password": password}, format="json", **headers)


LOGIN_PATHS = ["/api/auth/token/", "/accounts/login/", "/admin/login/"]


def login(path, address, username, password=WRONG, **headers):
    """One login at ``path`` from a client at ``address`` (a browser for the pages)."""
    if path.startswith("/api/"):
        return token_login(APIClient(REMOTE_ADDR=address), username, password, **headers)
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password}, **headers)


def signed_in(path, response):
    """The API answers a token; the storefront and the admin redirect onwards."""
    return response.status_code == (200 if path.startswith("/api/") else 302)


# --- who a client is ----------------------------------------------------------------------------


def test_without_trusted_proxies_the_client_is_the_connecting_address(settings):
    settings.TRUSTED_PROXIES = []
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert client_ip(request) == "198.51.100.9"


def test_behind_trusted_proxies_the_client_is_the_first_address_they_did_not_add(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1", "10.1.0.0/16"]
    # the client wrote "1.2.3.4" itself; the load balancer (10.1.2.3) saw 203.0.113.7 and the
    # reverse proxy (10.0.0.1) connected to us
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7, 10.1.2.3")
    assert client_ip(request) == "203.0.113.7"
    # a request that did not come through our proxy is its own address, whatever it says
    direct = RequestFactory().get("/", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert client_ip(direct) == "198.51.100.9"
    # garbage where an address should be: the proxy that passed it on saw the client
    garbage = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="<script>")
    assert client_ip(garbage) == "10.0.0.1"


def test_a_client_sending_its_own_forwarded_for_is_still_throttled(anonymous, customer, rate_limits):
    # when a client makes up a new X-Forwarded-For for every guess
    statuses = [
        token_login(anonymous, f"someone{i}", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(12)
    ]
    # then it is one client all the same, and the right password does not get through
    assert statuses[-1] == 429
    right = token_login(anonymous, customer.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.200")
    assert right.status_code == 429


def test_registration_cannot_be_spread_over_made_up_addresses(anonymous, rate_limits, db):
    statuses = [
        anonymous.post(
            "/api/auth/register/",
            {"username": f"probe{i}", "email": f"p{i}@example.com", "password": PASSWORD},
            format="json",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(21)
    ]
    assert statuses[-1] == 429


def test_clients_behind_a_trusted_proxy_are_limited_one_by_one(rate_limits, settings, customer):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    proxy = APIClient(REMOTE_ADDR="10.0.0.1")
    for _ in range(10):
        token_login(proxy, "nobody", HTTP_X_FORWARDED_FOR="203.0.113.5")
    # the guessing client is limited...
    assert token_login(proxy, "nobody", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    # ...and another customer behind the same proxy is not
    other = token_login(proxy, customer.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert other.status_code == 200


# --- failed logins: the client is locked out, not the account ---------------------------------


@pytest.mark.parametrize("path", LOGIN_PATHS)
def test_a_client_guessing_a_password_is_locked_out_and_the_account_is_not(rate_limits, db, path):
    # given a superuser (who may sign in on all three), and a client at one address guessing
    # their password ten times
    owner, other = StaffFactory(), StaffFactory()
    for _ in range(10):
        login(path, "203.0.113.66", owner.username)
    # when a minute has passed (the per-minute login limit has forgotten the client)
    cache.clear()
    # then that client is locked out for 15 minutes, even with the right password, for any account
    locked = login(path, "203.0.113.66", owner.username, PASSWORD)
    assert locked.status_code == 429 and locked["Retry-After"] == str(15 * 60)
    assert login(path, "203.0.113.66", other.username, PASSWORD).status_code == 429
    # and the owner, from their own address, signs in as always
    assert signed_in(path, login(path, "198.51.100.20", owner.username, PASSWORD))


def test_wrong_passwords_for_one_account_from_many_addresses_lock_nobody_out(rate_limits, customer):
    # given ten wrong passwords for one account, each from another address
    for i in range(10):
        token_login(APIClient(REMOTE_ADDR=f"198.51.100.{i}"), customer.username)
    # then its owner signs in from a new address, on the API and the web, and from a guessing one
    assert token_login(APIClient(REMOTE_ADDR="198.51.100.77"), customer.username, PASSWORD).status_code == 200
    page = Client(REMOTE_ADDR="198.51.100.78").post(
        "/accounts/login/", {"username": customer.username, "password": PASSWORD}
    )
    assert page.status_code == 302
    assert token_login(APIClient(REMOTE_ADDR="198.51.100.3"), customer.username, PASSWORD).status_code == 200


def test_failed_logins_count_against_the_client_behind_a_trusted_proxy(rate_limits, settings, customer):
    # given a client behind our proxy guessing a customer's password
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    for _ in range(10):
        login("/accounts/login/", "10.0.0.1", customer.username, HTTP_X_FORWARDED_FOR="203.0.113.5")
    cache.clear()
    # then django-axes counted it by the address the proxy reported, as every limit does
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}
    guessing = login("/accounts/login/", "10.0.0.1", customer.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert guessing.status_code == 429
    # and the customer, behind the same proxy, signs in
    own = login("/accounts/login/", "10.0.0.1", customer.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert own.status_code == 302


# --- the web forms ------------------------------------------------------------------------------


def test_the_web_login_answers_a_429_page_after_a_burst_of_wrong_passwords(rate_limits, customer):
    browser = Client()
    statuses = [
        browser.post("/accounts/login/", {"username": customer.username, "password": WRONG}).status_code
        for _ in range(11)
    ]
    assert statuses[0] == 200  # the form again, with its error
    assert statuses[-1] == 429
    page = browser.post("/accounts/login/", {"username": customer.username, "password": PASSWORD})
    assert page.status_code == 429
    assert page["Content-Type"].startswith("text/html")
    assert "Too many attempts" in page.content.decode()
    assert int(page["Retry-After"]) > 0


def test_the_admin_login_is_limited_too(rate_limits, db):
    superuser = StaffFactory()
    browser = Client()
    statuses = [
        browser.post("/admin/login/", {"username": superuser.username, "password": WRONG}).status_code
        for _ in range(11)
    ]
    assert statuses[0] == 200
    assert statuses[-1] == 429
    assert browser.post("/admin/login/", {"username": superuser.username, "password": PASSWORD}).status_code == 429


def test_the_web_and_the_api_login_share_one_budget(rate_limits, customer):
    # given five logins through the API (right passwords: no lockout involved)
    for _ in range(5):
        assert token_login(APIClient(), customer.username, PASSWORD).status_code == 200
    # then the web login has five left in the same minute
    browser = Client()
    statuses = [
        browser.post("/accounts/login/", {"username": f"web{i}", "password": WRONG}).status_code for i in range(6)
    ]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429


def test_web_signup_counts_against_the_registration_limit(rate_limits, anonymous, db):
    for i in range(20):
        anonymous.post(
            "/api/auth/register/", {"username": f"u{i}", "email": f"u{i}@x.io", "password": PASSWORD}, format="json"
        )
    form = {"username": "grace", "email": "g@x.io", "password": PASSWORD, "password_confirm": PASSWORD}
    page = Client().post("/accounts/signup/", form)
    assert page.status_code == 429
    assert "Too many attempts" in page.content.decode()
    assert not UserFactory._meta.model.objects.filter(username="grace").exists()


def test_the_signup_page_itself_is_not_limited(rate_limits, db):
    browser = Client()
    assert {browser.get("/accounts/signup/").status_code for _ in range(25)} == {200}


def test_checkout_is_limited_like_order_creation(rate_limits, customer, product):
    browser = Client()
    browser.force_login(customer)
    browser.post(f"/products/{product.sku}/", {"quantity": 1})
    checkout = {**address(), "payment_token": "tok_visa"}
    statuses = []
    for _ in range(31):
        browser.post(f"/products/{product.sku}/", {"quantity": 1})
        page = browser.get("/checkout/")
        key = page.context["form"]["checkout_key"].value()
        statuses.append(browser.post("/checkout/", {**checkout, "checkout_key": key}).status_code)
    assert statuses[:30] == [302] * 30
    assert statuses[30] == 429
    assert Order.objects.count() == 30


def test_the_api_and_checkout_share_the_order_budget(rate_limits, api, customer, product):
    for _ in range(30):
        api.post("/api/orders/", order_body(product), format="json")
    browser = Client()
    browser.force_login(customer)
    browser.post(f"/products/{product.sku}/", {"quantity": 1})
    key = browser.get("/checkout/").context["form"]["checkout_key"].value()
    page = browser.post("/checkout/", {**address(), "payment_token": "tok_visa", "checkout_key": key})
    assert page.status_code == 429


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_rate_limits_off_lets_every_login_through(settings, customer, path):
    settings.RATE_LIMITS = False
    settings.AXES_ENABLED = False
    browser = Client()
    statuses = {browser.post(path, {"username": customer.username, "password": WRONG}).status_code for _ in range(25)}
    assert statuses == {200}


# --- the page that lists them -------------------------------------------------------------------

PERIODS = {"s": "a second", "m": "a minute", "h": "an hour", "d": "a day"}


def test_docs_security_lists_every_limit_with_its_numbers(settings):
    page = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    for scope, rate in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].items():
        number, period = rate.split("/")
        assert f"| `{scope}` | {number} {PERIODS[period[0]]} |" in page, scope
    assert f"| `AXES_LOCKOUT_PARAMETERS` | `{settings.AXES_LOCKOUT_PARAMETERS}` |".replace("'", '"') in page
    assert f"| `AXES_FAILURE_LIMIT` | {settings.AXES_FAILURE_LIMIT} |" in page
    assert f"| `AXES_COOLOFF_TIME` | {settings.AXES_COOLOFF_TIME.total_seconds() / 60:.0f} minutes |" in page
