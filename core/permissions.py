"""Who may do what in the API: Django's model permissions, the same ones the admin checks.

One place for every right the API grants beyond "signed in" (contract §3). ``is_staff`` grants
nothing here: it only opens the admin's door, where these same permissions apply, page by page
and field by field (``core.admin.ReadOnlyAdmin``, ``orders.admin``). A superuser holds every
permission, as in the admin.

| right | needs |
|---|---|
| create a product / change one | ``shop.add_product`` / ``shop.change_product`` |
| see every customer's orders | ``orders.view_order`` (otherwise one's own, like any customer) |
| cancel another customer's order | ``orders.cancel_order`` (and seeing it: ``orders.view_order``) |
| read the payment provider's ledger | ``payments.view_providertransaction`` |
"""

from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from rest_framework.permissions import BasePermission, DjangoModelPermissions, IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

VIEW_EVERY_ORDER = "orders.view_order"
CANCEL_ANY_ORDER = "orders.cancel_order"
VIEW_PAYMENT_LEDGER = "payments.view_providertransaction"


def can_see_every_order(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and cast(PermissionsMixin, user).has_perm(VIEW_EVERY_ORDER)


def can_read_payment_ledger(user: AbstractBaseUser | AnonymousUser) -> bool:
    """The provider's ledger: its transactions, their references and idempotency keys, and the
    provider's reference on our payment record; in the API and on every admin page alike."""
    return user.is_authenticated and cast(PermissionsMixin, user).has_perm(VIEW_PAYMENT_LEDGER)


class CatalogPermissions(DjangoModelPermissions):
    """``add_product`` creates a product, ``change_product`` edits one (reading is for anyone)."""

    perms_map = {
        "GET": [],
        "OPTIONS": [],
        "HEAD": [],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }


class OrderPermissions(IsAuthenticated):
    """Every signed-in user places, reads and cancels their own orders.

    Which orders one can see at all is the queryset's business (``orders.selectors.order_list``
    with ``can_see_every_order``); acting on another customer's order needs its own right.
    """

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if getattr(view, "action", None) == "cancel" and obj.user_id != request.user.pk:
            return request.user.has_perm(CANCEL_ANY_ORDER)
        return True


class HasModelPermissions(BasePermission):
    """The signed-in user must hold every permission in ``required``."""

    required: tuple[str, ...] = ()

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(self.required))


class CanViewPaymentLedger(HasModelPermissions):
    required = (VIEW_PAYMENT_LEDGER,)
