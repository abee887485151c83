"""Account writes."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token


def user_register(*, username: str, email: str, password: str) -> tuple[AbstractUser, Token]:
    """Create a customer account and its API token.

    Raises ``ValidationError`` for a taken username or a password that fails the password
    rules (too short, too common, all digits, too close to the username).
    """
    user_model = get_user_model()
    if user_model.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": ["This username is taken."]})
    candidate = user_model(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(username=username, email=email, password=password)
            token = Token.objects.create(user=user)
    except IntegrityError as exc:  # the same username registered concurrently
        raise ValidationError({"username": ["This username is taken."]}) from exc
    return user, token


def user_token(*, user: AbstractUser) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


def user_password_change(*, user: AbstractUser, password: str) -> None:
    """Set a new password (already checked against the password rules by the form).

    Side effects: the user's password hash; every session of the user except the one the
    caller refreshes with ``update_session_auth_hash`` stops being signed in.
    """
    user.set_password(password)
    user.save(update_fields=["password"])
