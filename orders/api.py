from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django_countries.serializer_fields import CountryField
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from core.api import FieldsBuiltOnce, ShopRateThrottle, validation_error_from
from core.errors import ErrorCode
from core.idempotency import StoredResponse, idempotent
from core.permissions import OrderPermissions
from core.schema import error_response
from orders import api_docs, selectors, services
from orders.addresses import shipping_postal_code_clean
from orders.journal import JournalService
from orders.models import Coordination, Order, OrderEvent, OrderLine, Reason, Status
from payments.models import Payment
from payments.providers import PAYMENT_TOKEN_PATTERN
from payments.validators import CARD_DATA_REFUSED, validate_no_card_number
from sagas.models import SagaStep
from shipping.models import Shipment

# --- input -----------------------------------------------------------------------------------

MAX_ORDER_LINES = 50  # contract §3: 1..50 lines; each line queues its own reservation


@extend_schema_serializer(component_name="OrderItem")
class OrderItemInput(serializers.Serializer[Any]):
    sku = serializers.CharField(max_length=40)
    quantity = serializers.IntegerField(min_value=1, max_value=services.MAX_LINE_QUANTITY)


@extend_schema_serializer(component_name="Address")
class AddressInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(
        max_length=20, help_text="One of the country's postal codes (the test values pass in any country)."
    )
    country = CountryField()  # type: ignore[no-untyped-call]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["postal_code"] = shipping_postal_code_clean(
                country=str(attrs["country"]), postal_code=attrs["postal_code"]
            )
        except DjangoValidationError as error:
            raise serializers.ValidationError({"postal_code": error.messages}, code=error.code) from error
        return attrs


@extend_schema_serializer(component_name="OrderCreate")
class OrderCreateInput(serializers.Serializer[Any]):
    items: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=OrderItemInput(), allow_empty=False, max_length=MAX_ORDER_LINES
    )
    shipping_address = AddressInput()
    payment_token = serializers.RegexField(
        PAYMENT_TOKEN_PATTERN,
        max_length=100,
        validators=[validate_no_card_number],
        error_messages={"invalid": CARD_DATA_REFUSED},
    )
    coordination = serializers.ChoiceField(
        choices=Coordination.choices,
        required=False,
        help_text="How the order's saga is coordinated; by default the shop's `ORDER_COORDINATION`.",
    )


# --- output ----------------------------------------------------------------------------------
# Read-only, with the enumerations the server sends: the schema marks every field of an answer
# required (core.schema), and a generated client gets real enums.


@extend_schema_serializer(component_name="OrderItem")
class OrderItemOutput(FieldsBuiltOnce, serializers.ModelSerializer[OrderLine]):
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = OrderLine
        fields = ["sku", "name", "quantity", "unit_price", "line_total"]
        read_only_fields = fields


@extend_schema_serializer(component_name="Address")
class AddressOutput(serializers.Serializer[Any]):
    name = serializers.CharField(read_only=True)
    line1 = serializers.CharField(read_only=True)
    line2 = serializers.CharField(read_only=True, default="")
    city = serializers.CharField(read_only=True)
    postal_code = serializers.CharField(read_only=True)
    country = serializers.CharField(read_only=True, help_text="ISO 3166-1 alpha-2 code.")


@extend_schema_serializer(component_name="Payment")
class PaymentOutput(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=Payment.Status.choices, read_only=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    refunded_amount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)


@extend_schema_serializer(component_name="Shipment")
class ShipmentOutput(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=Shipment.Status.choices, read_only=True)
    carrier = serializers.CharField(read_only=True)
    tracking_number = serializers.CharField(read_only=True)


@extend_schema_serializer(component_name="Step")
class StepOutput(FieldsBuiltOnce, serializers.ModelSerializer[SagaStep]):
    class Meta:
        model = SagaStep
        fields = ["name", "status", "attempts", "started_at", "finished_at", "error"]
        read_only_fields = fields


@extend_schema_serializer(component_name="Order")
class OrderOutput(FieldsBuiltOnce, serializers.ModelSerializer[Order]):
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    # null while the order is not cancelled; never "" (the model allows blank, the server never writes it)
    cancellation_reason = serializers.ChoiceField(choices=Reason.choices, allow_null=True, read_only=True)
    items = OrderItemOutput(source="lines", many=True, read_only=True)
    shipping_address = AddressOutput(read_only=True)
    payment = serializers.SerializerMethodField()
    shipment = serializers.SerializerMethodField()
    coordination = serializers.ChoiceField(choices=Coordination.choices, read_only=True)
    steps = StepOutput(source="saga_steps", many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "cancellation_reason",
            "coordination",
            "items",
            "total",
            "currency",
            "shipping_address",
            "payment",
            "shipment",
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PaymentOutput(allow_null=True))
    def get_payment(self, order: Order) -> dict[str, Any] | None:
        payment = getattr(order, "payment", None)
        return PaymentOutput(payment).data if payment else None

    @extend_schema_field(ShipmentOutput(allow_null=True))
    def get_shipment(self, order: Order) -> dict[str, Any] | None:
        shipment = getattr(order, "shipment", None)
        return ShipmentOutput(shipment).data if shipment else None


@extend_schema_serializer(component_name="JournalEntry")
class JournalEntrySerializer(serializers.Serializer[Any]):
    """One line of an order's journal (``orders.journal.JournalEntry``)."""

    seq = serializers.IntegerField(read_only=True, help_text="1, 2, 3… in the journal's order (oldest first).")
    at = serializers.DateTimeField(read_only=True)
    service = serializers.ChoiceField(choices=JournalService.choices, read_only=True, help_text="Who acted.")
    kind = serializers.ChoiceField(choices=OrderEvent.Kind.choices, read_only=True)
    name = serializers.CharField(
        read_only=True,
        help_text=(
            "The command's task (`payments.charge_payment`), the event (`payment.charged`), the step, "
            "or the new status."
        ),
    )
    detail = serializers.CharField(read_only=True)
    trace_id = serializers.CharField(
        read_only=True,
        help_text="The OpenTelemetry trace the line was written in (32 hex digits); empty when tracing was off.",
    )


# --- views -----------------------------------------------------------------------------------


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices)

    class Meta:
        model = Order
        fields = ["status"]


@extend_schema(tags=["orders"])
@extend_schema_view(
    list=extend_schema(summary="List your orders", description=api_docs.LIST_DESCRIPTION),
    retrieve=extend_schema(
        summary="Follow one order",
        description=api_docs.RETRIEVE_DESCRIPTION,
        examples=[api_docs.COMPLETED_EXAMPLE],
    ),
)
class OrderViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet[Order]
):
    serializer_class = OrderOutput
    filterset_class = OrderFilter
    permission_classes = [OrderPermissions]

    def get_queryset(self) -> QuerySet[Order]:
        return selectors.order_list(user=self.request.user)

    def get_throttles(self) -> list[BaseThrottle]:
        if self.action == "create":
            self.throttle_scope = "order_create"
            return [ShopRateThrottle()]
        return []

    @extend_schema(
        summary="Place an order",
        description=api_docs.CREATE_DESCRIPTION,
        request=OrderCreateInput,
        responses={
            201: OpenApiResponse(OrderOutput, description="Accepted: the order, `pending`; follow it at `Location`."),
            409: error_response(
                "A request with this Idempotency-Key is still being processed.",
                ErrorCode.IDEMPOTENCY_REQUEST_IN_FLIGHT,
            ),
            422: error_response(
                "This Idempotency-Key was used with a different request.", ErrorCode.IDEMPOTENCY_KEY_REUSED
            ),
            503: error_response(
                "A service the order needs is down; nothing was created. Try again later.",
                ErrorCode.SERVICE_UNAVAILABLE,
            ),
        },
        parameters=[api_docs.IDEMPOTENCY_KEY, api_docs.LOCATION, api_docs.IDEMPOTENT_REPLAYED],
        examples=[*api_docs.CREATE_EXAMPLES, api_docs.PLACED_EXAMPLE],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            stored, replayed = self._place(request), False
        else:
            if not 1 <= len(key) <= 255:
                raise serializers.ValidationError({"Idempotency-Key": ["Use 1 to 255 characters."]}, code="invalid")
            stored, replayed = idempotent(
                user=request.user,  # type: ignore[arg-type]
                scope="orders.create",
                key=key,
                body=request.data,
                handler=lambda: self._place(request),
            )
        headers = dict(stored.headers) | ({"Idempotent-Replayed": "true"} if replayed else {})
        return Response(stored.body, status=stored.status, headers=headers)

    def _place(self, request: Request) -> StoredResponse:
        data = OrderCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            order = services.order_place(
                user=request.user,  # type: ignore[arg-type]
                items=[services.OrderItem(**item) for item in data.validated_data["items"]],
                shipping_address=data.validated_data["shipping_address"],
                payment_token=data.validated_data["payment_token"],
                coordination_mode=data.validated_data.get("coordination"),
            )
        except DjangoValidationError as exc:
            raise validation_error_from(exc) from exc
        body = OrderOutput(order).data  # as a GET of the order reads it
        location = request.build_absolute_uri(f"/api/orders/{order.pk}/")
        return StoredResponse(status.HTTP_201_CREATED, body, {"Location": location})

    @extend_schema(
        summary="Read an order's journal",
        operation_id="orders_journal",
        description=api_docs.JOURNAL_DESCRIPTION,
        responses=JournalEntrySerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def journal(self, request: Request, pk: str | None = None) -> Response:
        # One order's journal is short: the one list of the API that is not paginated.
        order = self.get_object()  # 404 for an order the user cannot see
        entries = selectors.order_journal(order=order, user=request.user)
        return Response(JournalEntrySerializer(entries, many=True).data)

    @extend_schema(
        summary="Cancel an order",
        operation_id="orders_cancel",
        description=api_docs.CANCEL_DESCRIPTION,
        request=None,
        responses={
            202: OpenApiResponse(OrderOutput, description="Cancelling: the order, now `compensating`."),
            409: error_response(
                "The order is completed or needs staff.",
                ErrorCode.ORDER_NOT_CANCELLABLE,
                "An order that is completed cannot be cancelled.",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        # 404 for an order the user cannot see; 403 for another customer's without cancel_order.
        order = self.get_object()
        reason = Reason.CUSTOMER_REQUEST if order.user_id == request.user.pk else Reason.STAFF_REQUEST
        services.order_cancel(order_id=order.pk, actor=request.user.get_username(), reason=reason)
        return Response(OrderOutput(self.get_queryset().get(pk=order.pk)).data, status=status.HTTP_202_ACCEPTED)
