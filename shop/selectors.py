"""Catalog reads."""

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from shop.models import Product


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def products_by_sku(skus: Iterable[str]) -> dict[str, Product]:
    return {product.sku: product for product in Product.objects.filter(sku__in=list(skus))}


def product_search(*, query: str = "") -> QuerySet[Product]:
    """The catalog by name, narrowed to products whose name or description contains ``query``."""
    products = product_list().order_by("name", "sku")
    if query:
        products = products.filter(Q(name__icontains=query) | Q(description__icontains=query))
    return products


def product_get(*, sku: str) -> Product | None:
    return Product.objects.filter(sku=sku).first()
