"""``POST /api/orders/<id>/review/``: a person approves or rejects an order held for review (§4c)."""

from typing import Any
from uuid import UUID

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import Conflict
from core.errors import ErrorCode
from core.permissions import can_see_every_order
from core.schema import error_response
from risk import services
from sagas.runtime import NotHeld

REVIEW_ORDER = "risk.review_order"


class ReviewInput(serializers.Serializer[Any]):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")


class ReviewOutput(serializers.Serializer[Any]):
    order_id = serializers.UUIDField()
    decision = serializers.CharField()
    decided_by = serializers.CharField()
    note = serializers.CharField()


class ReviewView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Approve or reject an order held for review",
        operation_id="orders_review",
        request=ReviewInput,
        responses={
            202: OpenApiResponse(ReviewOutput, description="Decided: the saga goes on, or the order is cancelled."),
            403: error_response("Staff without the permission `risk.review_order`.", ErrorCode.PERMISSION_DENIED),
            404: error_response("No such order (or a customer asking).", ErrorCode.NOT_FOUND),
            409: error_response(
                "The order is not in review.", ErrorCode.ORDER_NOT_IN_REVIEW, "The order is not waiting for a review."
            ),
        },
    )
    def post(self, request: Request, order_id: UUID) -> Response:
        user: Any = request.user
        if not user.has_perm(REVIEW_ORDER):
            # A customer is not told that reviews exist; staff are told what they lack.
            if can_see_every_order(user):
                raise PermissionDenied("Reviewing orders needs the permission risk.review_order.")
            raise Http404
        body = ReviewInput(data=request.data)
        body.is_valid(raise_exception=True)
        if not services.order_known(order_id=order_id):
            raise Http404
        try:
            services.review_decide(
                order_id=order_id,
                decision=body.validated_data["decision"],
                actor=user.get_username(),
                note=body.validated_data["note"],
            )
        except NotHeld as exc:
            raise Conflict("The order is not waiting for a review.", code=ErrorCode.ORDER_NOT_IN_REVIEW) from exc
        decided = services.screening_of(order_id=order_id)
        return Response(ReviewOutput(decided).data, status=status.HTTP_202_ACCEPTED)
