from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Permission, User
from factory.declarations import LazyAttribute, PostGenerationMethodCall, Sequence
from factory.django import DjangoModelFactory
from factory.helpers import post_generation

from orders.models import Coordination, Order
from orders.services import OrderItem, order_place
from payments import services as payment_services
from payments.models import Payment
from shop.models import Category, Product
from tests.provider import payment_token

PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = Sequence(lambda n: f"customer{n}")
    email = LazyAttribute(lambda user: f"{user.username}@example.com")
    password = PostGenerationMethodCall("set_password", PASSWORD)

    @post_generation
    def save_password(user: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            user.save()


class StaffFactory(UserFactory):
    """A superuser: every right there is."""

    username = Sequence(lambda n: f"staff{n}")
    is_staff = True
    is_superuser = True


class StaffMemberFactory(UserFactory):
    """Staff (may sign in to the admin) with only the rights given:
    ``StaffMemberFactory(permissions=["orders.view_order"])``."""

    username = Sequence(lambda n: f"clerk{n}")
    is_staff = True

    @post_generation
    def permissions(user: User, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        for name in extracted or []:
            app_label, codename = name.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


class ProductFactory(DjangoModelFactory[Product]):
    class Meta:
        model = Product

    sku = Sequence(lambda n: f"SKU-{n:05d}")
    name = Sequence(lambda n: f"Product {n}")
    description = "A fine product."
    price = Decimal("10.00")
    stock = 100


class CategoryFactory(DjangoModelFactory[Category]):
    class Meta:
        model = Category

    name = Sequence(lambda n: f"Category {n}")
    slug = Sequence(lambda n: f"category-{n}")


def with_image(product: Product) -> Product:
    """Give ``product`` a drawn picture and its grid thumbnail, as the admin or the seed would."""
    from shop.images import demo_image, product_thumbnail_refresh

    product.image.save(f"{product.sku.lower()}.jpg", demo_image(sku=product.sku, label=product.name), save=False)
    product.save(update_fields=["image"])
    product_thumbnail_refresh(product=product)
    product.refresh_from_db()
    return product


def address(**overrides: str) -> dict[str, str]:
    return {
        "name": "Ada Lovelace",
        "line1": "12 Analytical Row",
        "city": "London",
        "postal_code": "N1 9GU",
        "country": "GB",
        **overrides,
    }


def order_body(
    *products: Product, quantity: int = 1, token: str = "tok_visa", **address_overrides: str
) -> dict[str, Any]:
    return {
        "items": [{"sku": p.sku, "quantity": quantity} for p in products],
        "shipping_address": address(**address_overrides),
        "payment_token": payment_token(token),
    }


def place(
    user: User,
    *products: Product,
    quantity: int = 1,
    token: str = "tok_visa",
    coordination: str | None = None,
    **address_overrides: str,
) -> Order:
    """An order of ``products`` by ``user``, placed through the service the API and the checkout
    use; its saga starts once it commits (on the worker, in a saga test)."""
    return order_place(
        user=user,
        items=[OrderItem(sku=p.sku, quantity=quantity) for p in products],
        shipping_address=address(**address_overrides),
        payment_token=payment_token(token),
        coordination_mode=Coordination(coordination) if coordination else None,
    )


def post_order(client: Any, body: dict[str, Any]) -> str:
    """``POST /api/orders/`` as ``client``: the new order's id (the answer must be a 201)."""
    response = client.post("/api/orders/", body, format="json")
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def charged(order_id: Any, token: str, amount: Decimal = Decimal("12.34")) -> Payment:
    """What the charge step does with an opened payment (``payment_open``): the provider's
    charge, written down on the payment as the step's record does."""
    charge = payment_services.payment_charge(order_id=order_id, token=token, amount=amount)
    payment_services.payment_charged(order_id=order_id, charge=charge)
    return Payment.objects.get(order_id=order_id)
