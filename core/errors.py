"""The API's error codes: every error answer carries a stable ``code`` beside its ``detail``.

``detail`` is for a person and may be reworded; ``code`` is for a program and keeps its meaning.
The codes below are a closed set, each with its one status: the schema enumerates them
(``core.schema``) and ``docs/api.md`` explains them, so a new one is a change of the API.
A ``400`` also names each field in error, ``errors``: a path (``items[1].quantity``,
``shipping_address.postal_code``) → ``[{code, detail}]``. Those codes are whatever
``ValidationError`` the check raised carries (DRF's ``required``, ``max_value``…, the shop's
``unknown_sku``…), an open set a new check may add to without touching this module.

Our own handler (``core.api.exception_handler``) rather than drf-standardized-errors: that
package answers ``{"type", "errors": [{"code", "detail", "attr"}]}`` in place of the
``{"detail"}`` and field → messages bodies that the contract and today's clients read, and
it formats only what reaches a DRF view, while a share of our errors are answered before or
around one (the middleware's 400, 404, 413 and 500, django-axes' 429), which need the same
codes. Keeping the bodies and adding ``code`` (and ``errors``) takes this module.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from django.http import JsonResponse


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    PARSE_ERROR = "parse_error"
    BAD_REQUEST = "bad_request"
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    ORDER_NOT_CANCELLABLE = "order_not_cancellable"
    ORDER_NOT_IN_REVIEW = "order_not_in_review"
    IDEMPOTENCY_REQUEST_IN_FLIGHT = "idempotency_request_in_flight"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    SERVICE_UNAVAILABLE = "service_unavailable"


STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.PARSE_ERROR: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.NOT_AUTHENTICATED: 401,
    ErrorCode.AUTHENTICATION_FAILED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.NOT_ACCEPTABLE: 406,
    ErrorCode.ORDER_NOT_CANCELLABLE: 409,
    ErrorCode.ORDER_NOT_IN_REVIEW: 409,
    ErrorCode.IDEMPOTENCY_REQUEST_IN_FLIGHT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.THROTTLED: 429,
    ErrorCode.SERVER_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
}

# The schema's two enumerations (ENUM_NAME_OVERRIDES): a 400's codes, and every other error's.
BAD_REQUEST_CODES = [code.value for code in ErrorCode if STATUS_OF[code] == 400]
ERROR_CODES = [code.value for code in ErrorCode if STATUS_OF[code] != 400]

# What an error that names none of our codes (a library's own exception, a page Django rendered)
# is answered with: its status's generic code.
_GENERIC: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.NOT_AUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.THROTTLED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}

# A field error raised without a code, as DRF names it.
FIELD_CODE_DEFAULT = "invalid"

_VALUES = frozenset(code.value for code in ErrorCode)


def error_code(status: int, code: str | None = None) -> ErrorCode:
    """``code`` when it is one of the API's, else the generic code of ``status``."""
    if code in _VALUES:
        return ErrorCode(code)
    return _GENERIC.get(status, ErrorCode.SERVER_ERROR if status >= 500 else ErrorCode.BAD_REQUEST)


def error_body(
    status: int, detail: str, code: str | None = None, errors: dict[str, list[dict[str, str]]] | None = None
) -> dict[str, Any]:
    """An error answer's body: ``{"detail", "code"}``, and for a ``400`` its fields in ``errors``
    (empty when the request as a whole is refused), so that every ``400`` reads the same."""
    body: dict[str, Any] = {"detail": detail, "code": error_code(status, code)}
    if status == 400:
        body["errors"] = errors or {}
    return body


def error_json(status: int, detail: str, code: str | None = None) -> JsonResponse:
    """An error answered outside DRF (middleware, rate limits), in the API's error body."""
    return JsonResponse(error_body(status, detail, code), status=status)


def field_errors(detail: Mapping[Any, Any]) -> dict[str, list[dict[str, str]]]:
    """DRF's field → messages tree as path → ``[{code, detail}]``, each code the one the
    ``ValidationError`` carried. A nested serializer's field is ``parent.child``; a list's item,
    whether a ``ListSerializer``'s (a list with ``{}`` for each valid item) or a ``ListField``'s
    (a dict keyed by index), is ``items[1]``."""
    found: dict[str, list[dict[str, str]]] = {}
    _collect(detail, "", found)
    return found


def _collect(node: Any, path: str, found: dict[str, list[dict[str, str]]]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, int):
                _collect(value, f"{path}[{key}]", found)
            else:
                _collect(value, f"{path}.{key}" if path else str(key), found)
    elif isinstance(node, list | tuple):
        for index, item in enumerate(node):
            if isinstance(item, Mapping | list | tuple):
                _collect(item, f"{path}[{index}]", found)
            else:
                _collect(item, path, found)
    else:
        code = getattr(node, "code", None) or FIELD_CODE_DEFAULT
        found.setdefault(path, []).append({"code": str(code), "detail": str(node)})
