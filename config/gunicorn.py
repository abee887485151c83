"""gunicorn settings: ``gunicorn -c config/gunicorn.py config.wsgi`` (the Procfile and ``make bench``).

Four processes of two threads on a two-core machine: a request either waits for the database
or holds its process's GIL, and keep-alive clients spread over four processes instead of
piling onto one of two (measured in ``bench/improvements.md``). ``WEB_CONCURRENCY`` and
``WEB_THREADS`` change it; about two processes per core is a good start elsewhere.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("WEB_THREADS", "2"))
graceful_timeout = 10

# LOG_FORMAT=json: gunicorn's own lines (its errors, and the access log the Procfile asks for)
# are JSON objects too, as Django's are (telemetry/logs.py).
if os.environ.get("LOG_FORMAT", "text").lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},  # Django's LOGGING configures it in each process
        "formatters": {"json": {"()": "telemetry.logs.JsonFormatter"}},
        "handlers": {
            "error": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
