"""Every answer under ``/api/`` is JSON, and malformed requests are refused before they reach a view.

One middleware, outermost, for the whole API (contract §3): a control character in the path, the
query string or a header, or a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``, is answered
before any other middleware or view runs (so it never reaches the database); any error answer
that something else rendered as HTML (Django's 404, the 400 of a suspicious request, the 500 of
an unhandled exception) is turned into the API's error body (``core.errors``) with the same status.
"""

import io
import re
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.errors import error_json
from core.parsers import CONTROL_CHARACTERS

API_PREFIX = "/api/"
# In a header value: C0 but the tab (RFC 9110 allows it), and DEL. Values arrive decoded as
# ISO-8859-1, so bytes 0x80-0x9f there are parts of UTF-8 characters, not controls.
HEADER_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Headers of an error answer that still mean something on its JSON replacement.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")


class ApiJsonMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        refusal = request_refusal(request) or unsized_body_take(request)
        if refusal is not None:
            return refusal
        return as_json(self.get_response(request))


def request_refusal(request: HttpRequest) -> JsonResponse | None:
    """The error answer for a request no API view should see, or ``None``."""
    if CONTROL_CHARACTERS.search(request.path_info):
        return error_json(400, "The path contains a control character.")
    # WSGI hands the raw query string over decoded as ISO-8859-1; undo that before reading it as UTF-8.
    raw_query = request.META.get("QUERY_STRING", "").encode("iso-8859-1", errors="replace")
    query = unquote_to_bytes(raw_query.replace(b"+", b" ")).decode("utf-8", errors="replace")
    if CONTROL_CHARACTERS.search(query):
        return error_json(400, "The query string contains a control character.")
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and HEADER_CONTROL_CHARACTERS.search(value):
            header = name.removeprefix("HTTP_").replace("_", "-").title()
            return error_json(400, f"The {header} header contains a control character.")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error_json(400, "Content-Length is not a number.")
    if limit is not None and length > limit:
        return error_json(413, f"The request body is too large (at most {limit} bytes).")
    return None


def unsized_body_take(request: HttpRequest) -> JsonResponse | None:
    """A body sent without a Content-Length (chunked, which gunicorn dechunks and marks with
    ``wsgi.input_terminated``) is read here, at most the limit and one byte: larger is a 413.
    Django reads no body it was not told the length of, so without this such a body of any
    size would pass the limit, and an order sent this way would arrive empty."""
    if request.META.get("CONTENT_LENGTH") or not request.META.get("wsgi.input_terminated"):
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    stream = request.META["wsgi.input"]
    raw = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(raw) > limit:
        return error_json(413, f"The request body is too large (at most {limit} bytes).")
    if raw:  # from here on, as if its length had been declared
        request.META["CONTENT_LENGTH"] = str(len(raw))
        request._stream = io.BytesIO(raw)
    return None


def as_json(response: HttpResponse) -> HttpResponse:
    """``response`` itself when it is a success or already JSON, else its status in the API's error body."""
    if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
        return response
    replacement = json_error(response.status_code)
    for header in _KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    return replacement


def json_error(status: int) -> JsonResponse:
    """The API's answer for an error no view described: its status's generic code, and a ``detail``."""
    detail = {404: "Not found.", 500: "A server error occurred."}.get(status)
    if detail is None:
        try:
            detail = HTTPStatus(status).phrase + "."
        except ValueError:
            detail = "Error."
    return error_json(status, detail)
