"""Secrets out of logs and traces: what a URL or a header may carry that nobody should read later.

A password reset link (``/accounts/reset/<uidb64>/<token>/``) and an address verification link
(``/accounts/verify/<uidb64>/<token>/``) carry their token in the path; a query parameter named
like a token, key, secret, password, session or signature carries one in the query; the
``Authorization`` and ``Cookie`` headers carry the API token and the session id. Access logs,
the web's request log lines and the request spans keep the rest of the URL and lose those.
"""

import re

REDACTED = "[redacted]"

# The secret segment of the links emailed to customers. The reset view's own next page,
# ``/reset/<uidb64>/set-password/``, holds no secret (the token moved into the session).
_SECRET_PATH = re.compile(r"(/accounts/(?:reset|verify)/[^/?#\s\"]+/)(?!set-password/)[^/?#\s\"]+")
_SECRET_PARAMETER = re.compile(
    r"((?:^|[?&;])[^=&#\s\"]*(?:token|key|secret|passw|session|signature|auth|csrf)[^=&#\s\"]*=)[^&#\s\"]*",
    re.IGNORECASE,
)
# Headers whose whole value is a credential (request headers as gunicorn and WSGI name them).
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-csrftoken", "proxy-authorization"})


def secrets_scrubbed(text: str) -> str:
    """``text`` (a URL, a path, a request line, a log message) with every secret above redacted."""
    if "/" not in text and "=" not in text:
        return text
    return _SECRET_PARAMETER.sub(rf"\1{REDACTED}", _SECRET_PATH.sub(rf"\1{REDACTED}", text))
