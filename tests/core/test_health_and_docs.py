import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Connection

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_reports_database_and_broker(anonymous, db):
    response = anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_healthz_names_the_broker_when_it_is_down(anonymous, db, monkeypatch):
    # given a broker that refuses connections (nothing listens on port 1)
    monkeypatch.setattr(app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0", connect_timeout=1))
    response = anonymous.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unavailable"}


def test_openapi_schema_and_swagger_ui(anonymous, db):
    schema = anonymous.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/orders/", "/api/orders/{id}/cancel/", "/api/products/{sku}/", "/api/auth/register/"} <= set(paths)
    docs = anonymous.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn." not in docs.content  # served from our own static files


PRODUCTION = {
    "PATH": "/usr/bin:/bin",
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "x7#kQ!2vLr9@pZ4mW8^sT1&nB6*eY3%hU5(jD0)fG-cV+aR=oI~lK" * 2,
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "SITE_URL": "https://shop.example.com",
    # check does not connect; production refuses the embedded SQLite
    "DATABASE_URL": "postgres://shop@db.example.com:5432/shop",
    "CACHE_URL": "redis://cache.example.com:6379/2",
}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_profile_passes_check_deploy():
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("cache_url", [None, "locmemcache://", "filecache:///srv/cache", "dummycache://"])
def test_check_deploy_fails_without_a_cache_every_web_process_shares(cache_url):
    # given the production profile on a cache of its own per process (None: the file default)
    env = {key: value for key, value in PRODUCTION.items() if key != "CACHE_URL"}
    if cache_url:
        env["CACHE_URL"] = cache_url
    # when the deploy check runs, then it fails and says what to set
    result = check_deploy(env)
    assert result.returncode != 0
    assert "core.E001" in result.stderr and "CACHE_URL" in result.stderr


def test_production_profile_refuses_to_start_without_a_secret_key():
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.production"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("profile", "site_url"),
    [
        ("production", None),  # the links in its emails would lead to 127.0.0.1
        ("local", "shop.example.com"),  # no scheme
        ("local", "https://shop.example.com/shop/"),  # a path the links would lose
    ],
)
def test_site_url_is_required_in_production_and_must_be_an_origin(profile, site_url):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": f"config.settings.{profile}",
        "DJANGO_SECRET_KEY": "x7#kQ!2vLr9@pZ4mW8^sT1&nB6*eY3%hU5(jD0)fG-cV+aR=oI~lK" * 2,
        "DJANGO_ALLOWED_HOSTS": "shop.example.com",
        "DATABASE_URL": "postgres://shop@db.example.com:5432/shop",
    }
    if site_url is not None:
        env["SITE_URL"] = site_url
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "SITE_URL" in result.stderr


def test_unknown_api_urls_answer_json_404_and_pages_html_404(anonymous, db):
    api = anonymous.get("/api/products/has.a.dot/")
    assert api.status_code == 404
    assert api.json() == {"detail": "Not found.", "code": "not_found"}
    page = anonymous.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_every_error_body_is_an_object(anonymous, db):
    response = anonymous.get("/api/products/?search=%00")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The query string contains a control character.",
        "code": "bad_request",
        "errors": {},
    }
