"""The API's only parser (``DEFAULT_PARSER_CLASSES``): JSON bodies, checked once for the whole API."""

import codecs
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

# Deeper than any body this API reads (an order is 3 levels); far below Python's recursion limit,
# so neither parsing nor anything that walks the data afterwards can overflow the stack.
MAX_JSON_DEPTH = 32
# Unicode's control characters (Cc). Text in a body may hold tabs and line breaks, nothing else.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
BODY_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class JSONBodyParser(JSONParser):
    """The API's only parser: JSON, at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes, at most
    ``MAX_JSON_DEPTH`` levels deep, no control characters in its strings or keys.

    DRF's own parser reads the stream past Django's size limit and lets a deeply nested body
    raise ``RecursionError`` (a 500); no maintained parser checks depth and control characters.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(codecs.decode(raw, encoding), parse_constant=json.strict_constant)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply.") from exc
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
        json_check(data)
        return data


def json_check(data: Any) -> None:
    """Refuse (``ParseError``) data nested deeper than ``MAX_JSON_DEPTH`` or holding a control character."""
    pending: list[tuple[Any, int]] = [(data, 1)]  # iterative: the point is not to recurse
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON parse error - the body is nested deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(value, str):
            texts: list[str] = [value]
        elif isinstance(value, dict):
            texts = list(value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            texts = []
            pending.extend((item, depth + 1) for item in value)
        else:
            continue
        if any(BODY_CONTROL_CHARACTERS.search(text) for text in texts):
            raise exceptions.ParseError("The body contains a control character (only tab and line breaks are allowed).")
