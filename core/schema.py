"""The OpenAPI schema's shared parts: error answers and their bodies, declared per operation.

``ShopAutoSchema`` (``DEFAULT_SCHEMA_CLASS``) adds to every operation the error statuses it can
really answer, read from the view itself (its authentication, permissions, throttles, body,
path and pagination), each with the body the server sends: ``{"detail": …}``, or field →
messages for a ``400``. Statuses that depend on what a view does (``409``, ``422``, ``503``) are
declared by the view with ``error_response``.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, build_examples_list
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import permissions, serializers
from rest_framework.authentication import SessionAuthentication


class ErrorSerializer(serializers.Serializer[Any]):
    """Every error but a validation error: what went wrong, for a person to read."""

    detail = serializers.CharField(read_only=True)


def error_response(description: str, example: str | None = None) -> OpenApiResponse:
    """An ``@extend_schema`` response for an error status a view answers itself."""
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[OpenApiExample("error", value={"detail": example or description}, response_only=True)],
    )


_VALIDATION_ERROR = {
    "type": "object",
    "description": (
        "Each field in error with its messages (a nested field nests the same way); errors about the "
        "whole request are under `non_field_errors`. A body that is not JSON at all is answered "
        '`{"detail": …}`.'
    ),
    "additionalProperties": {},
}

_ERRORS: dict[str, tuple[str, str]] = {
    "401": ("Not authenticated, or the token is invalid or expired.", "Invalid token."),
    "403": ("Not allowed (or the CSRF token is missing, on the browser session).", "Permission denied."),
    "404": ("Not found, or not yours.", "Not found."),
    "413": ("The body is larger than the server accepts.", "The request body is too large."),
    "415": ("The body is not `application/json`.", 'Unsupported media type "text/plain" in request.'),
    "429": ("Too many requests: try again after `Retry-After` seconds.", "Request was throttled."),
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
        for code in self._error_statuses():
            responses.setdefault(code, self._error_response(code))
        return responses

    def _error_statuses(self) -> list[str]:
        """The ``{"detail": …}`` statuses this operation can answer, given how its view is built."""
        authenticators = self.view.get_authenticators()
        guards = [
            p for p in self.view.get_permissions() if type(p) not in (permissions.AllowAny, permissions.IsAuthenticated)
        ]
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        unsafe = self.method not in permissions.SAFE_METHODS
        csrf = unsafe and any(isinstance(a, SessionAuthentication) for a in authenticators)
        codes = {
            "401": bool(authenticators),
            "403": bool(guards) or csrf,
            "404": "{" in self.path or self._is_list_view(),  # a list's page out of range is a 404
            "413": has_body,
            "415": has_body,
            "429": bool(self.view.get_throttles()),
        }
        return [code for code, possible in codes.items() if possible]

    def _error_response(self, code: str) -> dict[str, Any]:
        description, example = _ERRORS[code]
        component = self.resolve_serializer(ErrorSerializer, "response")
        content = {"schema": component.ref, "examples": build_examples_list([_example({"detail": example})])}
        response: dict[str, Any] = {"description": description, "content": {"application/json": content}}
        if code == "429":
            response["headers"] = _RETRY_AFTER
        return response

    def _validation_error_response(self) -> dict[str, Any]:
        example = {"quantity": ["Ensure this value is less than or equal to 100."]}
        content = {
            "schema": self._component("ValidationError", _VALIDATION_ERROR),
            "examples": build_examples_list([_example(example)]),
        }
        return {"description": "Invalid input.", "content": {"application/json": content}}

    def _component(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)  # type: ignore[no-untyped-call]
        self.registry.register_on_missing(component)
        return component.ref


def _example(value: dict[str, Any]) -> OpenApiExample:
    return OpenApiExample("error", value=value, response_only=True)
