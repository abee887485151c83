"""Account writes: registration, API tokens and password reset emails."""

import uuid
from urllib.parse import urlsplit

from celery import signature
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from knox.models import AuthToken

from accounts.usernames import username_refusal
from accounts.verification import email_verification_send
from outbox.services import outbox_send

# Each client (an app, a script, a device) logs in with a token of its own, so logging one out
# leaves the others alone; a user who keeps logging in without logging out keeps this many.
MAX_TOKENS_PER_USER = 10

USERNAME_TAKEN = "This username is taken."


def user_register(*, username: str, email: str, password: str) -> tuple[AbstractUser, str]:
    """Create a customer account and its first API token; returns the user and the token.

    Side effects: the account's address is recorded unverified and a verification link is
    emailed to it (``accounts.verification``): its order emails wait for the proof.

    Raises ``ValidationError`` for a taken, reserved or confusable username (the same message
    for each) and for a password that fails the password rules (too short, too common, all
    digits, too close to the username).
    """
    user_model = get_user_model()
    refusal = username_refusal(username)
    if refusal is not None:
        raise ValidationError({"username": ValidationError(refusal, code="username_unavailable")})
    if user_model.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": ValidationError(USERNAME_TAKEN, code="username_taken")})
    candidate = user_model(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from exc  # each rule's own code
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(username=username, email=email, password=password)
            token = user_token(user=user)
            email_verification_send(user=user)  # sent once the account is committed
    except IntegrityError as exc:  # the same username registered concurrently
        raise ValidationError({"username": ValidationError(USERNAME_TAKEN, code="username_taken")}) from exc
    return user, token


def user_token(*, user: AbstractUser) -> str:
    """Issue a new API token for one client of ``user`` and return it.

    Side effects: stores only the token's hash, with its expiry (``API_TOKEN_TTL_HOURS``);
    deletes the user's expired tokens and the oldest beyond ``MAX_TOKENS_PER_USER``. The token
    itself is never stored, so this is the one moment it can be read.
    """
    _, token = AuthToken.objects.create(user=user)
    newest = AuthToken.objects.filter(user=user).order_by("-created").values_list("digest", flat=True)
    keep = list(newest[:MAX_TOKENS_PER_USER])
    AuthToken.objects.filter(user=user).filter(Q(expiry__lt=timezone.now()) | ~Q(digest__in=keep)).delete()
    return str(token)


def user_tokens_revoke(*, user_id: int) -> int:
    """Revoke every API token of the user (a password change or reset); returns how many."""
    deleted: int = AuthToken.objects.filter(user_id=user_id).delete()[0]
    return deleted


def tokens_purge_expired() -> int:
    """Delete every expired token (the beat task); returns how many."""
    deleted: int = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()[0]
    return deleted


def user_password_change(*, user: AbstractUser, password: str) -> None:
    """Set a new password (already checked against the password rules by the form).

    Side effects: the user's password hash; every API token of the user is revoked (a signal
    on the password hash), and every session except the one the caller refreshes with
    ``update_session_auth_hash`` stops being signed in.
    """
    user.set_password(password)
    user.save(update_fields=["password"])


def password_reset_request(*, email: str) -> None:
    """Queue the password reset email for ``email``: the answer goes out at once.

    Side effect: one outbox message (``accounts.password_reset_email``), the same whether or not
    an account has this address. Looking the address up and the mail server's round trip happen
    on a worker, after the answer (``password_reset_email_send``), so the time the answer takes
    says nothing about the address; doing the same work for an unknown one could not include
    the SMTP conversation, which is most of it. Nothing to compensate.
    """
    with transaction.atomic():
        # A message of its own: nothing to keep in order with any other.
        outbox_send(message=signature("accounts.password_reset_email", args=(email,)), shard=f"reset-{uuid.uuid4()}")


def password_reset_email_send(*, email: str) -> None:
    """Email a password reset link to each active account with ``email``; nothing for an unknown one.

    Side effect: the emails, through ``EMAIL_URL``. The link points at ``SITE_URL``, never at
    a Host some request named. Nothing to compensate: an email cannot be unsent, and a second
    one (a redelivered message) carries a link that works as well; the first used spends both.
    """
    site = urlsplit(settings.SITE_URL)
    form = PasswordResetForm(data={"email": email})
    if form.is_valid():
        form.save(
            domain_override=site.netloc,
            use_https=site.scheme == "https",
            subject_template_name="accounts/password_reset_subject.txt",
            email_template_name="accounts/password_reset_email.txt",
        )
