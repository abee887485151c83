"""The API's per-client limits on the web forms, and the answer a limited client gets.

The storefront's login, the admin's login, sign-up and checkout count against the same DRF
throttles as the API's token login, registration and order creation (one bucket per client
and scope), so a client cannot spend its budget twice by switching from one to the other.
A form can also be limited per something it names, whoever sends it: the password reset, per
email address. Every limit and its numbers: docs/security.md.
Failed logins are also counted per client by django-axes, on every path that calls
``authenticate()`` (API token, storefront login, admin login): a locked-out client is refused
for every account, and the accounts stay open to every other client.
"""

import hashlib
import math
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.views import APIView

from core.api import ShopRateThrottle
from core.errors import ErrorCode, error_json

View = Callable[..., HttpResponse]


def too_many_requests(request: HttpRequest, *, retry_after: float | None) -> HttpResponse:
    """429: JSON under /api/, the shop's page elsewhere; ``Retry-After`` in whole seconds."""
    seconds = max(1, math.ceil(retry_after)) if retry_after else None
    if request.path.startswith("/api/"):
        detail = "Request was throttled." + (f" Expected available in {seconds} seconds." if seconds else "")
        response: HttpResponse = error_json(429, detail, ErrorCode.THROTTLED)
    else:
        response = render(request, "429.html", {"retry_after": seconds}, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


class RateThrottlePer(ShopRateThrottle):
    """A scope counted per what ``counted`` reads from the request (an email address), not per
    client. The cache holds a digest of it, never the value itself."""

    def __init__(self, counted: Callable[[HttpRequest], str]) -> None:
        super().__init__()
        self.counted = counted

    def get_cache_key(self, request: Any, view: APIView) -> str:
        digest = hashlib.sha256(self.counted(request).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}


def rate_limited(
    scope: str, *, methods: tuple[str, ...] = ("POST",), per: Callable[[HttpRequest], str] | None = None
) -> Callable[[View], View]:
    """Limit a page's ``methods`` with the API's throttle ``scope`` (``DEFAULT_THROTTLE_RATES``):
    per client, or with ``per``, per what ``per(request)`` names, whoever sends it."""

    def decorator(view: View) -> View:
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method in methods:
                throttle = ShopRateThrottle() if per is None else RateThrottlePer(per)
                scoped = APIView()
                scoped.throttle_scope = scope  # type: ignore[attr-defined]
                if not throttle.allow_request(request, scoped):  # type: ignore[arg-type]
                    return too_many_requests(request, retry_after=throttle.wait())
            return view(request, *args, **kwargs)

        return limited

    return decorator


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: Any) -> HttpResponse:
    """django-axes' answer to a locked-out login (``AXES_LOCKOUT_CALLABLE``)."""
    cool_off = settings.AXES_COOLOFF_TIME
    seconds = cool_off.total_seconds() if isinstance(cool_off, timedelta) else None
    return too_many_requests(request, retry_after=seconds)
