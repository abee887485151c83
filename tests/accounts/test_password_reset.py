"""Password reset by email: limited per client and per address, the same answer by the same work
whether or not the address has an account, and a link to SITE_URL whatever the request's Host."""

import re

from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from config.celery import app

RESET = "/accounts/password_reset/"
TASK = "accounts.password_reset_email"


def ask(browser, email, **extra):
    return browser.post(RESET, {"email": email}, **extra)


def shape(sql: str) -> str:
    """A statement without its values (nor savepoint names): what was done, not to which row."""
    return re.sub(r"\d+", "?", re.sub(r"'(?:[^']|'')*'", "?", sql))


def test_forty_resets_to_one_address_send_three_emails(rate_limits, customer, run_outbox):
    # when one client asks forty times for a reset of one address
    browser = Client()
    statuses = [ask(browser, customer.email).status_code for _ in range(40)]
    # then the fourth and every later one is the shop's 429 page, and three emails go out
    assert statuses[:3] == [302] * 3 and set(statuses[3:]) == {429}
    page = ask(browser, customer.email)
    assert "Too many attempts" in page.content.decode() and int(page["Retry-After"]) > 0
    assert run_outbox(TASK) == 3
    assert [message.to for message in mail.outbox] == [[customer.email]] * 3


def test_an_address_is_limited_whoever_asks_and_however_it_is_spelled(rate_limits, customer, run_outbox):
    spellings = [customer.email, customer.email.upper(), f" {customer.email} ", customer.email]
    statuses = [ask(Client(REMOTE_ADDR=f"198.51.100.{i}"), email).status_code for i, email in enumerate(spellings)]
    assert statuses == [302, 302, 302, 429]
    assert run_outbox(TASK) == 3


def test_one_client_cannot_spread_resets_over_many_addresses(rate_limits, db):
    browser = Client()
    statuses = [ask(browser, f"someone{i}@example.com").status_code for i in range(11)]
    assert statuses[:10] == [302] * 10 and statuses[10] == 429


def test_the_limits_are_off_with_rate_limits_off(customer):
    assert {ask(Client(), customer.email).status_code for _ in range(10)} == {302}


def test_a_known_and_an_unknown_address_get_the_same_answer_by_the_same_work(
    transactional_db, no_relay, customer, run_outbox
):
    # when a reset is asked for an account's address, and for one nobody has, each request in a
    # transaction of its own as in production (on PostgreSQL each then wakes the relay)
    work = {}
    for email in (customer.email, "nobody@example.com"):
        with CaptureQueriesContext(connection) as queries:
            response = ask(Client(), email)
        work[email] = (response.status_code, response["Location"], [shape(q["sql"]) for q in queries.captured_queries])
    # then both answers were made alike: no account looked up, no email sent, one message queued
    assert work[customer.email] == work["nobody@example.com"]
    assert not any("auth_user" in sql for sql in work[customer.email][2])
    assert mail.outbox == []
    # and the worker sends the one email there is to send, from the notifications queue
    assert run_outbox(TASK) == 2
    assert [message.to for message in mail.outbox] == [[customer.email]]
    assert app.amqp.router.route({}, TASK)["queue"].name == "notifications"


def test_the_reset_link_comes_from_site_url_never_from_the_host_header(customer, settings, run_outbox):
    settings.SITE_URL = "https://shop.example.com"
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]
    # when a reset is asked with a Host the client chose
    ask(Client(), customer.email, HTTP_HOST="localhost:6666")
    run_outbox(TASK)
    # then the email's link leads to the shop's configured address
    [message] = mail.outbox
    link = re.search(r"\S+/accounts/reset/\S+/", message.body)
    assert link and link.group(0).startswith("https://shop.example.com/accounts/reset/")
    assert "6666" not in message.body and "localhost" not in message.body
