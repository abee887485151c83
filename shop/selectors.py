"""Catalog reads."""

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from shop.models import Category, Product

# The catalog's sort choices (value -> ordering); the SKU breaks ties so pages never overlap.
CATALOG_ORDERINGS = {
    "name": ("name", "sku"),
    "-name": ("-name", "sku"),
    "price": ("price", "name", "sku"),
    "-price": ("-price", "name", "sku"),
}


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def products_by_sku(skus: Iterable[str]) -> dict[str, Product]:
    return {product.sku: product for product in Product.objects.filter(sku__in=list(skus))}


def product_search(
    *, query: str = "", category: Category | None = None, in_stock: bool = False, sort: str = "name"
) -> QuerySet[Product]:
    """The catalog sorted by ``sort`` (a key of ``CATALOG_ORDERINGS``, by name otherwise),
    narrowed to products whose name or description contains ``query``, to one ``category``,
    and to products that can still be ordered when ``in_stock``."""
    products = product_list().order_by(*CATALOG_ORDERINGS.get(sort, CATALOG_ORDERINGS["name"]))
    if query:
        products = products.filter(Q(name__icontains=query) | Q(description__icontains=query))
    if category is not None:
        products = products.filter(category=category)
    if in_stock:
        products = products.filter(stock__gt=0)
    return products


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("name")


def category_get(*, slug: str) -> Category | None:
    return Category.objects.filter(slug=slug).first()


def product_get(*, sku: str) -> Product | None:
    return Product.objects.select_related("category").filter(sku=sku).first()
