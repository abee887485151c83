import pytest
from django.contrib.auth.models import User

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def signup_form(**overrides):
    return {
        "username": "grace",
        "email": "grace@example.com",
        "password": "compiler-1952-cobol",
        "password_confirm": "compiler-1952-cobol",
        **overrides,
    }


def test_signup_page_renders(client):
    response = client.get("/accounts/signup/")

    assert response.status_code == 200
    assert 'name="password_confirm"' in response.content.decode()


def test_signing_up_creates_the_account_and_logs_in(client):
    response = client.post("/accounts/signup/", signup_form())

    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(username="grace")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_signing_up_returns_to_where_the_visitor_was_going(client):
    response = client.post("/accounts/signup/?next=/checkout/", signup_form())

    assert response["Location"] == "/checkout/"


def test_signup_never_redirects_to_another_site(client):
    response = client.post("/accounts/signup/", signup_form(next="https://evil.example/"))

    assert response["Location"] == "/"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"password": "short", "password_confirm": "short"}, "password", "too short"),
        ({"password": "password123", "password_confirm": "password123"}, "password", "too common"),
        ({"password": "83749275018", "password_confirm": "83749275018"}, "password", "entirely numeric"),
        ({"password_confirm": "something-else-entirely"}, "password_confirm", "differ"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"username": "has spaces"}, "username", "Enter a valid value"),
    ],
)
def test_signup_errors_are_shown_on_their_field(client, overrides, field, message):
    response = client.post("/accounts/signup/", signup_form(**overrides))

    html = response.content.decode()
    assert response.status_code == 200  # the form again, with its errors
    assert f'id="id_{field}_error"' in html
    assert message in html
    assert not User.objects.filter(username=overrides.get("username", "grace")).exists()


def test_a_taken_username_is_refused(client, customer):
    response = client.post("/accounts/signup/", signup_form(username=customer.username.upper()))

    assert response.status_code == 200  # the form again, with its errors
    assert "This username is taken" in response.content.decode()


def test_login_and_logout(client, customer):
    # when the customer logs in with the right password
    response = client.post("/accounts/login/", {"username": customer.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(customer.pk)

    # and logs out
    response = client.post("/accounts/logout/")

    # then the session is anonymous again
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_a_wrong_password_is_refused_with_a_message(client, customer):
    response = client.post("/accounts/login/", {"username": customer.username, "password": "wrong"})

    assert response.status_code == 200
    assert "match. Please try again" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_needs_post(shopper):
    assert shopper.get("/accounts/logout/").status_code == 405
