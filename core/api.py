"""Pieces every API view shares: the JSON body parser, the error format, conflicts and the rate limits.

Malformed input is refused here, once for the whole API, never view by view: bodies that are
not JSON, too large, nested too deeply or carrying control characters (``core.parsers``), and
exceptions no view turns into an answer (``exception_handler``). ``core.middleware`` does the
same for what happens before and around DRF (paths, query strings, oversized bodies, 404s, 500s).
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core.clients import client_ip
from core.parsers import PayloadTooLarge


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class IdempotencyKeyMisuse(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used with a different request."
    default_code = "idempotency_key_reused"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: model-level validation errors are 400s, not 500s; a body too large is a
    413 and one nested too deeply a 400 wherever it is noticed; every error body is an object (a
    bare list of messages goes under ``non_field_errors``). What is left is a 500, which
    ``core.middleware`` answers in JSON."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):  # too many query fields, a bad Host header, …
        exc = exceptions.ParseError(str(exc) or "Bad request.")
    elif isinstance(exc, RecursionError):
        exc = exceptions.ParseError("The request is nested too deeply.")
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    return response


class ShopRateThrottle(ScopedRateThrottle):
    """Scoped per-client limits that ``RATE_LIMITS=off`` switches off (load tests only).

    A signed-in client is its user; an anonymous one its address as our trusted proxies report
    it (``core.clients``), never a header it sends. The web forms share these counters
    (``core.ratelimits.rate_limited``).
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not settings.RATE_LIMITS:
            return True
        return super().allow_request(request, view)

    def get_ident(self, request: Request) -> str:
        return client_ip(request)
