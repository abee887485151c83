from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.permissions import CanViewPaymentLedger
from payments import selectors


class TransactionOutput(serializers.Serializer[Any]):
    kind = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    status = serializers.CharField()
    reference = serializers.CharField()
    idempotency_key = serializers.CharField()
    created_at = serializers.DateTimeField()


class TransactionQuery(serializers.Serializer[Any]):
    order = serializers.UUIDField()


class TransactionListView(generics.ListAPIView[Any]):
    """The payment provider's own record of money moved for one order (``view_providertransaction``)."""

    permission_classes = [CanViewPaymentLedger]
    serializer_class = TransactionOutput
    filter_backends: list[type] = []

    @extend_schema(parameters=[OpenApiParameter("order", OpenApiTypes.UUID, required=True)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        query = TransactionQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.provider_transactions(order_id=str(query.validated_data["order"]))
