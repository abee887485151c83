"""Baseline endpoints: the least a DRF view on this stack can do for a write and for a read.

``POST /bench/bare/write/`` authenticates like ``POST /api/orders/`` (token), parses the same
JSON body and inserts one row. ``GET /bench/bare/read/`` is public like ``/api/products/`` and
reads one row. Both run on the same gunicorn, settings and middleware as the shop.
"""

import json
from typing import Any

from django.db import connection
from django.utils import timezone
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

TABLE = "bench_bare_row"


def create_table() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, "
                "body text NOT NULL)"
            )
        else:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (id integer PRIMARY KEY AUTOINCREMENT, created_at text NOT NULL, "
                "body text NOT NULL)"
            )


class BareWriteView(APIView):
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (created_at, body) VALUES (%s, %s)", [timezone.now(), json.dumps(request.data)]
            )
        return Response({"ok": True}, status=status.HTTP_201_CREATED)


class BareReadView(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, created_at FROM {TABLE} ORDER BY id LIMIT 1")
            row = cursor.fetchone()
        return Response({"id": row[0] if row else None})
