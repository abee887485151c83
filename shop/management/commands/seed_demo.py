"""``manage.py seed_demo``: a demo catalog and a demo customer, only into an empty database."""

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from shop.images import demo_image, product_thumbnail_refresh
from shop.models import Category, Product
from shop.services import product_create

DEMO_CUSTOMER = ("demo", "demo@example.com", "demo-shopper-2026")

CATEGORIES = {
    "kitchen": "Kitchen & table",
    "apparel": "Apparel",
    "desk": "Desk & paper",
    "home": "Home",
}
# SKU prefix -> category slug
CATEGORY_OF = {
    "MUG": "kitchen",
    "BTL": "kitchen",
    "CUP": "kitchen",
    "TEE": "apparel",
    "CAP": "apparel",
    "BAG": "apparel",
    "SCK": "apparel",
    "NTB": "desk",
    "PEN": "desk",
    "STK": "desk",
    "LMP": "desk",
    "PST": "home",
    "KEY": "home",
    "CND": "home",
    "SPK": "home",
}

CATALOG = [
    ("MUG-001", "Enamel camp mug", "Chip-resistant enamel, 350 ml.", "12.50", 120),
    ("TEE-002", "Organic cotton tee", "Heavyweight, garment-dyed.", "24.00", 80),
    ("CAP-003", "Six-panel cap", "Waxed canvas with a brass buckle.", "19.90", 45),
    ("BAG-004", "Canvas tote", "Holds a week of groceries.", "16.00", 60),
    ("NTB-005", "Dot-grid notebook", "A5, 160 pages, lay-flat binding.", "9.75", 200),
    ("PEN-006", "Brass pen", "Machined brass, refillable.", "32.00", 25),
    ("BTL-007", "Steel bottle", "Keeps drinks cold for 24 hours.", "27.50", 70),
    ("SCK-008", "Merino socks", "Two pairs, cushioned sole.", "18.00", 90),
    ("PST-009", "Risograph poster", "A2, two colours, signed.", "40.00", 12),
    ("KEY-010", "Leather key ring", "Vegetable-tanned leather.", "11.00", 150),
    ("CND-011", "Soy candle", "Cedar and smoke, 40 hours.", "22.00", 35),
    ("STK-012", "Sticker pack", "Ten weatherproof vinyl stickers.", "5.00", 500),
    ("LMP-013", "Desk lamp", "Dimmable, warm light.", "89.00", 8),
    ("SPK-014", "Limited print", "Numbered edition: almost gone.", "120.00", 3),
    ("CUP-015", "Espresso cups", "Set of two, stoneware.", "21.00", 0),
]


class Command(BaseCommand):
    help = "Seed the demo catalog and a demo customer when the database has none."

    def handle(self, *args: Any, **options: Any) -> None:
        if Product.objects.exists():
            self.stdout.write("Catalog already present: nothing seeded.")
        else:
            categories = {
                slug: Category.objects.get_or_create(slug=slug, defaults={"name": name})[0]
                for slug, name in CATEGORIES.items()
            }
            for sku, name, description, price, stock in CATALOG:
                product = product_create(sku=sku, name=name, description=description, price=Decimal(price), stock=stock)
                # Pictures are drawn here with Pillow: the seed downloads nothing.
                product.category = categories[CATEGORY_OF[sku.split("-")[0]]]
                product.image.save(f"{sku.lower()}.jpg", demo_image(sku=sku, label=name), save=False)
                product.save(update_fields=["category", "image"])
                product_thumbnail_refresh(product=product)
                self.stdout.write(f"  product {sku} {name}")
            self.stdout.write(self.style.SUCCESS(f"Seeded {len(CATALOG)} products."))
        # The demo customer's password is public (README.md): it is created only in a database
        # with no account at all, never next to real customers, and never again once deleted.
        username, email, password = DEMO_CUSTOMER
        user_model = get_user_model()
        if user_model.objects.exists():
            self.stdout.write("Accounts already present: no demo customer created.")
        else:
            user_model.objects.create_user(username=username, email=email, password=password)
            self.stdout.write(self.style.SUCCESS(f"Demo customer: {username} / {password}"))
