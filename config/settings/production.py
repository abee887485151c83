"""Production profile: secrets from the environment, HTTPS only, DEBUG off."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, env

SECRET_KEY = env("DJANGO_SECRET_KEY")  # required: no default here
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
# The links in emails point here (base checks its form): the developer's default would send
# every customer to 127.0.0.1.
if not env.str("SITE_URL", default=""):
    raise ImproperlyConfigured(
        "The production profile needs SITE_URL, the shop's public address: https://shop.example.com"
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# The embedded SQLite file is for one developer's machine: a shop in production runs on a
# database server. An operator who means it (a single-machine demo) says so explicitly.
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and not env.bool("ALLOW_SQLITE_IN_PRODUCTION", default=False):
    raise ImproperlyConfigured(
        "The production profile does not run on the embedded SQLite database: set DATABASE_URL "
        "(e.g. postgres://user@host:5432/shop), or ALLOW_SQLITE_IN_PRODUCTION=1 to run on it anyway."
    )

# Uploaded files come from a web server or object storage here, not from Django (docs/operations.md).
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=False)
