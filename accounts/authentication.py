"""API tokens: django-rest-knox's hashed, expiring tokens, one per client (contract §3)."""

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from rest_framework import exceptions


class ExpiringTokenAuthentication(TokenAuthentication):
    """Knox's ``Authorization: Token <token>``, with two changes.

    - Only the presented token's expiry is checked. Knox also reads every other token of the
      user on every request to delete the expired ones: one more query on each API call. The
      beat task ``accounts.purge_expired_tokens`` deletes those instead.
    - A token that is not UTF-8 is an invalid token (401), not a server error.
    """

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        try:
            token.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        return super().authenticate_credentials(token)  # type: ignore[no-any-return]

    def _cleanup_token(self, auth_token: Any) -> bool:
        """True (and the token deleted) when the presented token has expired."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class ExpiringTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The OpenAPI security scheme of the API's tokens: ``Authorization: Token <token>``
    (drf-spectacular's own for knox, which does not match subclasses)."""

    target_class = "accounts.authentication.ExpiringTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
