from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import generics, serializers
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import ErrorCode
from core.permissions import CanViewPaymentLedger
from core.schema import error_response
from payments import selectors
from payments.models import ProviderTransaction
from payments.providers import PaymentError

UNREACHABLE = "The payment provider's ledger cannot be read now; try again later."


class ProviderUnreachable(APIException):
    status_code = 503
    default_detail = UNREACHABLE
    default_code = ErrorCode.SERVICE_UNAVAILABLE


@extend_schema_serializer(component_name="Transaction")
class TransactionOutput(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=ProviderTransaction.Kind.choices, read_only=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    status = serializers.ChoiceField(choices=ProviderTransaction.Status.choices, read_only=True)
    reference = serializers.CharField(read_only=True)
    idempotency_key = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class TransactionQuery(serializers.Serializer[Any]):
    order = serializers.UUIDField()


class TransactionListView(generics.ListAPIView[Any]):
    """The payment provider's own record of money moved for one order (``view_providertransaction``)."""

    permission_classes = [CanViewPaymentLedger]
    serializer_class = TransactionOutput
    filter_backends: list[type] = []

    @extend_schema(
        tags=["payments"],
        summary="The provider's ledger for one order",
        description=(
            "Staff with the `view_providertransaction` permission. Every charge and refund the payment "
            "provider recorded for the order, with its idempotency key: a completed order has one "
            "succeeded charge equal to its total; a cancelled one nets to zero."
        ),
        parameters=[OpenApiParameter("order", OpenApiTypes.UUID, required=True, description="The order's id.")],
        responses={200: TransactionOutput(many=True), 503: error_response(UNREACHABLE, ErrorCode.SERVICE_UNAVAILABLE)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        query = TransactionQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        try:
            return selectors.provider_transactions(order_id=str(query.validated_data["order"]))
        except PaymentError as exc:  # a remote provider (Stripe) out of reach, or refusing the shop's key
            raise ProviderUnreachable() from exc
