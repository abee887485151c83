"""The OpenAPI schema's shared parts: error answers and their bodies, declared per operation.

``ShopAutoSchema`` (``DEFAULT_SCHEMA_CLASS``) adds to every operation the error statuses it can
really answer, read from the view itself (its authentication, permissions, throttles, body,
path and pagination), each with the body the server sends (``core.errors``): ``Error``,
``{"detail", "code"}``, or for a ``400`` ``ValidationError``, which adds each field's messages
and their codes. Statuses that depend on what a view does (``409``, ``422``, ``503``) are
declared by the view with ``error_response``. The codes are two enumerations,
``ValidationErrorCodeEnum`` and ``ErrorCodeEnum`` (``ENUM_NAME_OVERRIDES``); a field's codes are
an open set, so a plain string.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, build_examples_list
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import permissions, serializers
from rest_framework.authentication import SessionAuthentication

from core.errors import BAD_REQUEST_CODES, ERROR_CODES, ErrorCode


class ErrorSerializer(serializers.Serializer[Any]):
    """Every error but a `400`: what went wrong, for a person to read, and its code, for a program."""

    detail = serializers.CharField(read_only=True)
    code = serializers.ChoiceField(
        choices=ERROR_CODES,
        read_only=True,
        help_text="What went wrong, stable for a program to act on (the API's introduction lists them).",
    )


def error_response(description: str, code: ErrorCode, example: str | None = None) -> OpenApiResponse:
    """An ``@extend_schema`` response for an error status a view answers itself, with its ``code``."""
    return OpenApiResponse(
        response=ErrorSerializer,
        description=f"`{code}`: {description}",
        examples=[OpenApiExample("error", value={"detail": example or description, "code": code}, response_only=True)],
    )


_FIELD_ERROR = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": (
                "The check that failed: DRF's (`required`, `invalid`, `max_value`, …) or the shop's "
                "(`unknown_sku`, …). An open set: a client must accept codes it does not know."
            ),
        },
        "detail": {"type": "string"},
    },
    "required": ["code", "detail"],
}


def _validation_error(field_error: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "`code` is `validation_error` for fields in error, each listed in `errors` by its path "
            "(`items[1].quantity`, `shipping_address.postal_code`) with the code and message of each "
            "problem; the same messages are also under each field's own name, nested as the field is, "
            "and errors about the whole request under `non_field_errors`. A body that is not JSON "
            "(`parse_error`) or a request malformed outside its body (`bad_request`) has empty `errors`."
        ),
        "properties": {
            "detail": {"type": "string"},
            "code": {"type": "string", "enum": BAD_REQUEST_CODES},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": field_error}},
        },
        "required": ["code", "detail", "errors"],
        "additionalProperties": {},
    }


# status: (description, example detail, example code)
_ERRORS: dict[str, tuple[str, str, ErrorCode]] = {
    "401": (
        "Not authenticated (`not_authenticated`), or the token is invalid or expired (`authentication_failed`).",
        "Invalid token.",
        ErrorCode.AUTHENTICATION_FAILED,
    ),
    "403": (
        "Not allowed (or the CSRF token is missing, on the browser session).",
        "Permission denied.",
        ErrorCode.PERMISSION_DENIED,
    ),
    "404": ("Not found, or not yours.", "Not found.", ErrorCode.NOT_FOUND),
    "413": (
        "The body is larger than the server accepts.",
        "The request body is too large.",
        ErrorCode.PAYLOAD_TOO_LARGE,
    ),
    "415": (
        "The body is not `application/json`.",
        'Unsupported media type "text/plain" in request.',
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ),
    "429": (
        "Too many requests: try again after `Retry-After` seconds.",
        "Request was throttled.",
        ErrorCode.THROTTLED,
    ),
}

_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}}


class ShopAutoSchema(AutoSchema):
    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        """In an answer every field is always present (``null`` when it has no value), so all are
        ``required``; in a request the serializer's own rules stand."""
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)  # type: ignore[no-untyped-call]
        if direction == "response" and schema.get("properties"):
            schema["required"] = sorted(schema["properties"])
        # drf-spectacular leaves out the length limits of a nested list (``many=True``).
        for name, field in serializer.fields.items():
            prop = schema.get("properties", {}).get(name, {})
            if not isinstance(field, serializers.ListSerializer) or prop.get("type") != "array":
                continue
            min_length, max_length = getattr(field, "min_length", None), getattr(field, "max_length", None)
            if min_length is not None or not field.allow_empty:
                prop["minItems"] = min_length or 1
            if max_length is not None:
                prop["maxItems"] = max_length
        return schema

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        responses.setdefault("400", self._validation_error_response())
        for status in self._error_statuses():
            responses.setdefault(status, self._error_response(status))
        return responses

    def _error_statuses(self) -> list[str]:
        """The ``Error`` statuses this operation can answer, given how its view is built."""
        authenticators = self.view.get_authenticators()
        guards = [
            p for p in self.view.get_permissions() if type(p) not in (permissions.AllowAny, permissions.IsAuthenticated)
        ]
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        unsafe = self.method not in permissions.SAFE_METHODS
        csrf = unsafe and any(isinstance(a, SessionAuthentication) for a in authenticators)
        statuses = {
            "401": bool(authenticators),
            "403": bool(guards) or csrf,
            "404": "{" in self.path or self._is_list_view(),  # a list's page out of range is a 404
            "413": has_body,
            "415": has_body,
            "429": bool(self.view.get_throttles()),
        }
        return [status for status, possible in statuses.items() if possible]

    def _error_response(self, status: str) -> dict[str, Any]:
        description, detail, code = _ERRORS[status]
        component = self.resolve_serializer(ErrorSerializer, "response")
        example = _example({"detail": detail, "code": code})
        content = {"schema": component.ref, "examples": build_examples_list([example])}
        response: dict[str, Any] = {"description": description, "content": {"application/json": content}}
        if status == "429":
            response["headers"] = _RETRY_AFTER
        return response

    def _validation_error_response(self) -> dict[str, Any]:
        message = "Ensure this value is less than or equal to 100."
        example = {
            "detail": "Invalid input.",
            "code": ErrorCode.VALIDATION_ERROR,
            "errors": {"items[1].quantity": [{"code": "max_value", "detail": message}]},
            "items": [{}, {"quantity": [message]}],
        }
        schema = self._component("ValidationError", _validation_error(self._component("FieldError", _FIELD_ERROR)))
        content = {"schema": schema, "examples": build_examples_list([_example(example)])}
        return {"description": "Invalid input.", "content": {"application/json": content}}

    def _component(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)  # type: ignore[no-untyped-call]
        self.registry.register_on_missing(component)
        return component.ref


def _example(value: dict[str, Any]) -> OpenApiExample:
    return OpenApiExample("error", value=value, response_only=True)
