"""The shop's own settings (base profile) with the benchmark's URLs added and nothing shared.

Database, broker and result backend come from the environment that ``bench`` sets (a database
``bench_shop`` and Redis DBs 12-15, or files under ``var/bench/``); the cache and the static
files stay private to the benchmark too.
"""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR

BENCH_DIR = VAR_DIR / "bench"

# The shop's URLs plus the bare baseline endpoints (bench/urls.py); nothing else changes.
ROOT_URLCONF = "bench.urls"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STATIC_ROOT = BENCH_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(BENCH_DIR / "celerybeat-schedule")

if os.environ.get("BENCH_COUNT_QUERIES"):  # the counting run only (bench/querycount.py)
    from bench import querycount

    querycount.install()
