"""gunicorn settings: ``gunicorn -c config/gunicorn.py config.wsgi`` (the Procfile and ``make bench``).

Four processes of two threads on a two-core machine: a request either waits for the database
or holds its process's GIL, and keep-alive clients spread over four processes instead of
piling onto one of two (measured in ``bench/improvements.md``). ``WEB_CONCURRENCY`` and
``WEB_THREADS`` change it; about two processes per core is a good start elsewhere.
"""

import os
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

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


# Atoms of the access log that carry a URL, and those that are a credential whole (the request's
# headers as ``{name}i``, the WSGI environ as ``{name}e``, the response's headers as ``{name}o``).
_URL_ATOMS = ("r", "U", "q", "f", "{referer}i", "{raw_uri}e", "{path_info}e", "{query_string}e", "{http_referer}e")
_CREDENTIAL_ATOMS = (
    "{authorization}i",
    "{proxy-authorization}i",
    "{cookie}i",
    "{x-csrftoken}i",
    "{set-cookie}o",
    "{http_authorization}e",
    "{http_proxy_authorization}e",
    "{http_cookie}e",
    "{http_x_csrftoken}e",
)


class AccessLogger(Logger):
    """gunicorn's logger, with no secret in an access log line whatever ``access_log_format``
    names: a reset or verification link's token and token-like query parameters are redacted
    from the request line, path, query and referer (``telemetry.scrub``), and the API token,
    session cookie and CSRF token headers are replaced whole."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
        from telemetry.scrub import REDACTED, secrets_scrubbed  # the app's folder is on the path by now

        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in _URL_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = secrets_scrubbed(atoms[key])
        for key in _CREDENTIAL_ATOMS:
            if key in atoms:
                atoms[key] = REDACTED
        return atoms


logger_class = AccessLogger
