from django.conf import settings
from django.db import models


class EmailVerification(models.Model):
    """The address a customer signed up with, and when they proved it is theirs.

    Only accounts made by signing up (the storefront's form or ``POST /api/auth/register/``)
    have one, created unverified: anyone can type any address there. Accounts made by staff
    (the admin, ``createsuperuser``, ``seed_demo``) have none and are trusted: a person with
    the right to create users vouched for the address. ``accounts.verification`` decides.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_verification")
    # The address the proof is for: an account whose address changed since must prove the new one.
    email = models.EmailField(max_length=254)
    sent_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.email} ({'verified' if self.verified_at else 'not verified'})"
