from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer, inline_serializer
from knox import views as knox_views
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.authentication import ExpiringTokenAuthentication
from core.api import ShopRateThrottle


class RegisterSerializer(serializers.Serializer[Any]):
    username = serializers.RegexField(r"^[\w.@+-]+$", max_length=150)
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


@extend_schema_serializer(component_name="Login")
class TokenRequestSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [ShopRateThrottle]
    throttle_scope = "register"

    @extend_schema(
        tags=["auth"],
        operation_id="auth_register",
        summary="Create an account",
        description="Answers the new account's API token: send it as `Authorization: Token <token>`.",
        examples=[
            OpenApiExample(
                "A new customer",
                value={"username": "ada", "email": "ada@example.com", "password": "analytical-engine-1843"},
                request_only=True,
            )
        ],
        request=RegisterSerializer,
        responses={
            201: inline_serializer(
                "Registered",
                {
                    "id": serializers.IntegerField(),
                    "username": serializers.CharField(),
                    "token": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, token = services.user_register(**serializer.validated_data)
        return Response({"id": user.pk, "username": user.username, "token": token}, status=status.HTTP_201_CREATED)


class TokenView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [ShopRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        tags=["auth"],
        operation_id="auth_token",
        summary="Get a token",
        description="The account's API token, for `Authorization: Token <token>`. Wrong credentials are a `400`.",
        examples=[
            OpenApiExample(
                "The demo customer", value={"username": "demo", "password": "demo-shopper-2026"}, request_only=True
            )
        ],
        request=TokenRequestSerializer,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # django-axes watches authenticate(): failures count per client, and a locked-out client
        # gets its 429 from the AxesMiddleware (core.ratelimits.lockout_response).
        user = authenticate(request=request._request, **serializer.validated_data)
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                {"non_field_errors": ["Unable to log in with those credentials."]}, code="invalid_credentials"
            )
        return Response({"token": services.user_token(user=user)})


class LogoutView(knox_views.LogoutView):
    """Revokes the token the request is made with; the user's other clients keep theirs."""

    authentication_classes = [ExpiringTokenAuthentication]

    @extend_schema(
        tags=["auth"],
        operation_id="auth_logout",
        summary="Revoke this token",
        description="Revokes the token the request is made with (`204`); the account's other tokens keep working.",
        request=None,
        responses={204: None},
    )
    def post(self, request: Request, format: str | None = None) -> Response:
        return super().post(request, format)  # type: ignore[no-any-return]
