"""The shopping cart: in the session before login, server-side (``SavedCart``) once signed in.

Either holds only ``{sku: quantity}``; names and prices are read from the catalog each time, so
the cart always shows what the order will cost (``order_place`` prices the same way). A signed-in
customer's cart follows them to any browser; the cart they filled before signing in is added to
it on the first request after login, and leaves the session.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from shop.models import CartRestoration, Product, SavedCart, StockReservation
from shop.selectors import product_get, products_by_sku

SESSION_KEY = "cart"
MAX_QUANTITY = 100  # the API's limit per line (contract §3)
MAX_LINES = 50  # the API's limit of lines per order (contract §3): a bigger cart could not be ordered


class CartError(ValueError):
    """The cart cannot take this: an SKU not in the catalog, or one line too many."""


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity

    @property
    def exceeds_stock(self) -> bool:
        return self.quantity > self.product.stock


class Cart:
    def __init__(self, session: SessionBase, user: AbstractBaseUser | AnonymousUser | None = None) -> None:
        self.session = session
        self.user_id: int | None = user.pk if user is not None and user.is_authenticated else None
        if self.user_id is None:
            self._quantities: dict[str, int] = dict(session.get(SESSION_KEY, {}))
            return
        saved = SavedCart.objects.filter(user_id=self.user_id).values_list("quantities", flat=True).first()
        self._quantities = dict(saved or {})
        anonymous: dict[str, int] = session.get(SESSION_KEY) or {}
        if anonymous:  # filled before signing in: added to the saved cart, once
            for sku, quantity in anonymous.items():
                if sku in self._quantities or len(self._quantities) < MAX_LINES:
                    self._quantities[sku] = min(self._quantities.get(sku, 0) + quantity, MAX_QUANTITY)
            del session[SESSION_KEY]
            self._save()

    @classmethod
    def of(cls, request: HttpRequest) -> "Cart":
        """The cart of whoever makes ``request``: saved for a signed-in customer, else in the session."""
        return cls(request.session, getattr(request, "user", None))

    def add(self, *, sku: str, quantity: int) -> int:
        """Add up to ``quantity`` of a catalog product: never more than it has in stock now, so
        the cart promises nothing the checkout would refuse. Returns the units added (0 when the
        line already holds all there is). Raises ``CartError`` for an SKU the catalog does not
        have and for a new line past ``MAX_LINES``: the cart keeps only real SKUs, and only as
        many lines as one order may have."""
        if sku not in self._quantities and len(self._quantities) >= MAX_LINES:
            raise CartError(f"Your cart is full: an order holds at most {MAX_LINES} different products.")
        product = product_get(sku=sku)
        if product is None:
            raise CartError("There is no such product.")
        before = self._quantities.get(sku, 0)
        after = max(before, min(before + quantity, MAX_QUANTITY, product.stock))
        if after > 0:
            self._quantities[sku] = after
            self._save()
        return after - before

    def set(self, *, sku: str, quantity: int) -> bool:
        """Change the quantity of a line of the cart (0 removes it); False when ``sku`` is not in it."""
        if sku not in self._quantities:
            return False
        if quantity <= 0:
            self.remove(sku=sku)
            return True
        self._quantities[sku] = min(quantity, MAX_QUANTITY)
        self._save()
        return True

    def remove(self, *, sku: str) -> None:
        self._quantities.pop(sku, None)
        self._save()

    def clear(self) -> None:
        self._quantities = {}
        self._save()

    def lines(self) -> list[CartLine]:
        """The cart's lines in the order they were added; SKUs gone from the catalog drop out."""
        products = products_by_sku(self._quantities)
        return [CartLine(products[sku], qty) for sku, qty in self._quantities.items() if sku in products]

    @property
    def count(self) -> int:
        return sum(self._quantities.values())

    def _save(self) -> None:
        if self.user_id is not None:
            SavedCart.objects.update_or_create(user_id=self.user_id, defaults={"quantities": self._quantities})
            return
        self.session[SESSION_KEY] = self._quantities
        self.session.modified = True


def cart_restore_order(*, user_id: int, order_id: str) -> None:
    """Put a cancelled order's lines back into its customer's saved cart, once per order.

    For an order whose payment failed: the customer's next move is another card, without
    finding every product again. Quantities are what the catalog can sell now (a line sold
    out meanwhile is left out); prices are the catalog's, as always in the cart. Side effects:
    the customer's ``SavedCart`` and a ``CartRestoration`` row; nothing to compensate.
    """
    lines = StockReservation.objects.filter(order_id=order_id).select_related("product").order_by("line_id")
    with transaction.atomic():
        try:
            with transaction.atomic():
                CartRestoration.objects.create(order_id=order_id)
        except IntegrityError:
            return  # already back in the cart: a second announcement changes nothing
        saved, _ = SavedCart.objects.select_for_update().get_or_create(user_id=user_id)
        quantities: dict[str, int] = dict(saved.quantities)
        for line in lines:
            sku, stock = line.product.sku, line.product.stock
            if sku not in quantities and len(quantities) >= MAX_LINES:
                continue
            quantity = min(max(quantities.get(sku, 0), line.quantity), stock, MAX_QUANTITY)
            if quantity > 0:
                quantities[sku] = quantity
        saved.quantities = quantities
        saved.save(update_fields=["quantities", "updated_at"])


def cart_was_restored(*, order_id: Any) -> bool:
    return CartRestoration.objects.filter(order_id=order_id).exists()


def cart_availability_check(*, lines: list[CartLine]) -> None:
    """Refuse a cart that asks for more than the catalog can still sell, naming each short line.

    ``lines`` must be freshly read (``Cart.lines()``). This spares the shopper an order that
    would be cancelled as out of stock a second later; the saga's reservation still decides
    under concurrency (someone may buy the last units between this check and the reservation).
    Raises ``ValidationError`` with one message per short line.
    """
    problems = []
    for line in lines:
        if line.product.stock == 0:
            problems.append(f"{line.product.name} is sold out: remove it from your cart to order the rest.")
        elif line.exceeds_stock:
            problems.append(
                f"{line.product.name}: you asked for {line.quantity}, only {line.product.stock} left. "
                "Lower the quantity in your cart."
            )
    if problems:
        raise ValidationError(problems, code="out_of_stock")


def cart_total(lines: list[CartLine]) -> Decimal:
    return sum((line.line_total for line in lines), Decimal("0"))


def cart_summary(request: HttpRequest) -> dict[str, Any]:
    """Context processor: the number of items in the cart, for the header on every page."""
    return {"cart_count": Cart.of(request).count if hasattr(request, "session") else 0}
