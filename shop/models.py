from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from shop.validators import validate_image_pixels


class Category(models.Model):
    """A shelf of the catalog; its page is the catalog narrowed to it (``/categories/<slug>/``)."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField(max_length=40, unique=True, validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(max_length=3, default="USD")
    # Units that can still be ordered: reserving takes from it, releasing gives back.
    stock = models.PositiveIntegerField(default=0)
    category = models.ForeignKey(Category, on_delete=models.SET_NULL, null=True, blank=True, related_name="products")
    # The photo as uploaded, and the copy sized for the catalog grid (made by shop.images).
    image = models.ImageField(upload_to="products/", blank=True, validators=[validate_image_pixels])
    thumbnail = models.ImageField(upload_to="products/thumbs/", blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "sku"]  # the SKU breaks ties, so pages never repeat or skip a product
        indexes = [models.Index(fields=["name", "sku"], name="product_catalog_order")]  # pages read in order
        constraints = [
            models.CheckConstraint(condition=models.Q(stock__gte=0), name="product_stock_never_negative"),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="product_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    def clean(self) -> None:
        if self.currency != settings.SHOP_CURRENCY:
            raise ValidationError({"currency": [f"The shop sells in {settings.SHOP_CURRENCY} only."]})


class StockReservation(models.Model):
    """Units of one product held for one order line; released at most once."""

    class Status(models.TextChoices):
        RESERVED = "reserved"
        RELEASED = "released"

    # The order line it holds units for, by id: inventory owns this table and knows no order model.
    order_id = models.UUIDField(db_index=True)
    line_id = models.BigIntegerField(unique=True)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="reservations")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id} ({self.status})"


class SavedCart(models.Model):
    """A signed-in customer's cart, kept server-side so that it follows them across browsers.

    ``quantities`` is ``{sku: quantity}`` as in the session of an anonymous visitor: names and
    prices are read from the catalog each time.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_cart")
    quantities = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"cart of {self.user_id}"


class CartRestoration(models.Model):
    """An order whose lines went back into its customer's cart after its payment failed: once per
    order, though the order may be announced cancelled twice (a late charge refunded after it)."""

    order_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.order_id)
