"""Pieces every API view shares: the error format, conflicts and the rate limits."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core.clients import client_ip


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class IdempotencyKeyMisuse(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used with a different request."
    default_code = "idempotency_key_reused"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: model-level validation errors are 400s, not 500s, and every error
    body is an object (a bare list of messages goes under ``non_field_errors``)."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
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


_ERROR_BODY = {"type": "object", "additionalProperties": True, "description": "`detail`, or field → messages"}
_COMMON_ERRORS = {
    "400": "Invalid input: each field with its messages.",
    "401": "Not authenticated.",
    "403": "Not allowed.",
    "404": "Not found, or not yours.",
    "429": "Too many requests: see the Retry-After header.",
}


def document_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the errors it can answer."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in _COMMON_ERRORS.items():
                responses.setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": _ERROR_BODY}}}
                )
    return result
