"""Email verification: order emails go to an address only once its owner has proven it is theirs.

A signed, expiring link, made with Django's own token mechanism (a subclass of the password
reset's ``PasswordResetTokenGenerator``, with its own salt). Not django-allauth, the ecosystem's
standard for this: it would take over sign-up, login and password reset (its own views, forms,
templates, models and middleware) for one feature the shop can build on what it already uses for
the reset link. The token is an HMAC of the account and its address under ``SECRET_KEY``, with a
timestamp: it cannot be forged, names the address it proves (a link for an address the account
no longer has does nothing), and expires after ``PASSWORD_RESET_TIMEOUT`` (three days).

Customers can browse, fill a cart and order before verifying; until then their order emails
are recorded as ``unverified`` and not sent (``notifications.services``).
"""

import logging
import smtplib

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from accounts.models import EmailVerification

logger = logging.getLogger(__name__)


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "accounts.verification.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user: AbstractBaseUser, timestamp: int) -> str:
        # The address, so that a link proves only the address it was sent to.
        return f"{user.pk}{getattr(user, 'email', '').lower()}{timestamp}"


tokens = EmailVerificationTokenGenerator()


def email_is_verified(*, user_id: int, email: str) -> bool:
    """Whether order emails may go to ``email`` for the account ``user_id``: true for accounts
    made by staff (no verification row), and for a signed-up account whose owner proved this
    address."""
    verification = EmailVerification.objects.filter(user_id=user_id).only("email", "verified_at").first()
    return _proven(verification, email)


def customer_to_email(*, user_id: int) -> tuple[User | None, bool]:
    """The account ``user_id`` (``None`` when it is gone), and whether order emails may go to
    its address (``email_is_verified``), in one query."""
    customer = User.objects.select_related("email_verification").filter(pk=user_id).first()
    if customer is None:
        return None, False
    return customer, _proven(getattr(customer, "email_verification", None), customer.email)


def _proven(verification: EmailVerification | None, email: str) -> bool:
    if verification is None:
        return True  # made by staff
    return verification.verified_at is not None and verification.email.lower() == email.lower()


def email_verification_send(*, user: User) -> None:
    """Email ``user`` a link that proves their address is theirs, after the current transaction.

    Side effects: the account's ``EmailVerification`` row (created unverified, or pointed at
    the account's current address, unverified again if the address changed); one email. A mail
    server that refuses is logged, not raised: the account exists either way, and the customer
    can ask for the link again from their account page.
    """
    now = timezone.now()
    verification, created = EmailVerification.objects.get_or_create(
        user=user, defaults={"email": user.email, "sent_at": now}
    )
    if not created:
        if verification.email.lower() != user.email.lower():
            verification.email, verification.verified_at = user.email, None
        verification.sent_at = now
        verification.save(update_fields=["email", "sent_at", "verified_at"])
    if user.email:
        transaction.on_commit(lambda: _send(user))


def _send(user: User) -> None:
    path = reverse(
        "accounts:verify_email",
        kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": tokens.make_token(user)},
    )
    context = {"user": user, "link": f"{settings.SITE_URL}{path}"}
    try:
        send_mail(
            subject=render_to_string("accounts/verify_email_subject.txt", context).strip(),
            message=render_to_string("accounts/verify_email.txt", context),
            from_email=None,
            recipient_list=[user.email],
        )
    except (OSError, smtplib.SMTPException):
        logger.warning("The address verification email to user %s could not be sent", user.pk, exc_info=True)


def email_verify(*, uidb64: str, token: str) -> User | None:
    """Mark the address of the link's account verified if ``token`` proves it; returns the
    account, or None for a link that was tampered with, has expired, or is for an address the
    account no longer has. Verifying twice changes nothing."""
    try:
        user_id = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    user = User.objects.filter(pk=user_id).first()
    if user is None or not user.email or not tokens.check_token(user, token):
        return None
    EmailVerification.objects.filter(user=user).exclude(email__iexact=user.email, verified_at__isnull=False).update(
        email=user.email, verified_at=timezone.now()
    )
    return user
