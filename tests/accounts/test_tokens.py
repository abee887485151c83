"""API tokens expire, are stored hashed, are one per client, and are revoked by logout and by a
password change (contract §3)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.services import MAX_TOKENS_PER_USER
from tests.factories import PASSWORD, StaffFactory, UserFactory


def log_in(user) -> str:
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    return str(response.json()["token"])


def status_with(token: str) -> int:
    return APIClient().get("/api/orders/", HTTP_AUTHORIZATION=f"Token {token}").status_code


def test_a_token_is_stored_only_as_a_hash(customer):
    token = log_in(customer)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuthToken._meta.db_table}")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert token not in stored
    assert status_with(token) == 200


def test_a_token_expires_after_the_ttl(customer, settings):
    # given a token issued now
    token = log_in(customer)
    expiry = AuthToken.objects.get(user=customer).expiry
    # then it lives API_TOKEN_TTL_HOURS (default a week)
    assert settings.API_TOKEN_TTL_HOURS == 168
    assert abs(expiry - (timezone.now() + timedelta(hours=168))) < timedelta(minutes=1)
    # and once that time has passed it no longer authenticates
    AuthToken.objects.filter(user=customer).update(expiry=timezone.now() - timedelta(seconds=1))
    assert status_with(token) == 401


def test_each_client_gets_its_own_token_and_logout_revokes_only_the_one_it_is_called_with(customer):
    phone, laptop = log_in(customer), log_in(customer)
    assert phone != laptop

    response = APIClient().post("/api/auth/logout/", HTTP_AUTHORIZATION=f"Token {phone}")

    assert response.status_code == 204
    assert status_with(phone) == 401
    assert status_with(laptop) == 200


def test_logout_needs_a_token(anonymous, db):
    assert anonymous.post("/api/auth/logout/").status_code == 401


def test_a_user_keeps_a_bounded_number_of_tokens(customer):
    tokens = [log_in(customer) for _ in range(MAX_TOKENS_PER_USER + 1)]
    assert AuthToken.objects.filter(user=customer).count() == MAX_TOKENS_PER_USER
    assert status_with(tokens[0]) == 401  # the oldest went
    assert status_with(tokens[-1]) == 200


def test_a_password_change_revokes_every_token_of_the_user(customer):
    tokens = [log_in(customer), log_in(customer)]
    other = log_in(UserFactory())

    customer.set_password("a-new-and-long-passphrase")
    customer.save()

    assert [status_with(token) for token in tokens] == [401, 401]
    assert status_with(other) == 200


def test_a_password_set_by_staff_in_the_admin_revokes_the_users_tokens(customer):
    token = log_in(customer)
    admin = Client()
    admin.force_login(StaffFactory())

    response = admin.post(
        f"/admin/auth/user/{customer.pk}/password/",
        {"password1": "a-new-and-long-passphrase", "password2": "a-new-and-long-passphrase"},
    )

    assert response.status_code == 302
    assert status_with(token) == 401


def test_saving_the_user_without_a_new_password_revokes_nothing(customer):
    token = log_in(customer)
    customer.first_name = "Ada"
    customer.save()
    assert status_with(token) == 200


def test_a_rehash_of_the_same_password_revokes_nothing(customer, settings):
    # given a token, and then a stronger hasher that re-hashes the password at the next login
    token = log_in(customer)
    old_hash = customer.password
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    log_in(customer)
    customer.refresh_from_db()
    assert customer.password != old_hash  # re-hashed
    assert status_with(token) == 200


@pytest.mark.parametrize("header", ["Token \xff\xfe", "Token ", "Token a b", "Token " + "f" * 5000])
def test_a_malformed_token_is_a_401_not_a_500(db, header):
    assert APIClient().get("/api/orders/", HTTP_AUTHORIZATION=header).status_code == 401
