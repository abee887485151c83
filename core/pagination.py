"""The one pagination of every API list: ``{count, next, previous, results}``."""

from typing import Any

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """DRF's schema, with every key required: the four are in every page (``next`` and
        ``previous`` are ``null`` at the ends), and a generated client should know it."""
        result: dict[str, Any] = super().get_paginated_response_schema(schema)
        result["required"] = ["count", "next", "previous", "results"]
        result["properties"]["next"]["example"] = "http://127.0.0.1:8000/api/products/?page=2"
        result["properties"]["previous"]["example"] = None
        return result
