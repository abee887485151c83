"""Test profile: fast hashing, limits off unless a test turns them on, a file-backed test DB.

Each pytest-xdist worker gets a broker and result store of its own (a folder, or a pair of
Redis databases), so parallel saga tests never take each other's messages.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from config.settings.base import *  # noqa: F403
from config.settings.base import (
    CELERY_BROKER_URL,
    CELERY_RESULT_BACKEND,
    DATABASES,
    VAR_DIR,
    broker_transport_options,
)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
RATE_LIMITS = False
AXES_ENABLED = False  # follows RATE_LIMITS, as in base
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Two test runs on one machine at once (two checkouts, two people) set SHOP_TEST_RUN apart.
_run = os.environ.get("SHOP_TEST_RUN", "")
_redis_base = int(os.environ.get("SHOP_TEST_REDIS_BASE", "2"))
MEDIA_ROOT = VAR_DIR / f"test-media{_run}"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so that the Celery worker process of the saga tests can open it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db{_run}.sqlite3")}
elif _run:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_run}"}

TEST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_index = int(TEST_WORKER.removeprefix("gw")) if TEST_WORKER.startswith("gw") else 0


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_URL = f"filesystem://{VAR_DIR / f'test-broker{_run}-{TEST_WORKER}'}"
elif CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_URL = _redis_db(CELERY_BROKER_URL, _redis_base + 2 * _index)
if CELERY_RESULT_BACKEND.startswith("redis"):
    CELERY_RESULT_BACKEND = _redis_db(CELERY_RESULT_BACKEND, _redis_base + 1 + 2 * _index)
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
# Celery reads these two from the environment before its settings, so they are set there too;
# the saga tests' worker processes inherit them.
os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
os.environ["CELERY_RESULT_BACKEND"] = CELERY_RESULT_BACKEND
