"""Catalog reads."""

from collections.abc import Iterable

from django.db.models import QuerySet

from shop.models import Product


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def products_by_sku(skus: Iterable[str]) -> dict[str, Product]:
    return {product.sku: product for product in Product.objects.filter(sku__in=list(skus))}
