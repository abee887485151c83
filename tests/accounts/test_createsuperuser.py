"""Django's own commands keep working: the README's ``createsuperuser --noinput``."""

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client


def test_createsuperuser_from_the_environment_makes_an_admin_who_can_sign_in(db, monkeypatch):
    # given the variables the README sets (a username that sign-up refuses to customers)
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "choose-a-long-one")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "admin@example.com")

    # when the command runs without questions
    call_command("createsuperuser", interactive=False, verbosity=0)

    # then that superuser exists and signs in to the admin
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.email == "admin@example.com"
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "choose-a-long-one"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
