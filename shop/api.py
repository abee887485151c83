from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework import filters, mixins, serializers, viewsets
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission
from rest_framework.request import Request

from core.permissions import CatalogPermissions
from shop import selectors, services
from shop.models import Product


class ProductSerializer(serializers.ModelSerializer[Product]):
    class Meta:
        model = Product
        fields = ["sku", "name", "description", "price", "currency", "stock"]
        read_only_fields = ["currency"]

    def create(self, validated_data: dict[str, Any]) -> Product:
        return services.product_create(**validated_data)

    def update(self, instance: Product, validated_data: dict[str, Any]) -> Product:
        # Only the fields sent are written; a new stock moves by its difference (see service).
        return services.product_update(product=instance, changes=dict(validated_data))


class BoundedSearchFilter(filters.SearchFilter):
    """``?search=``: at most ``MAX_TERMS`` words of at most ``MAX_TERM_LENGTH`` characters.

    Each word costs a ``LIKE`` per field and row; a thousand of them overflowed SQLite's
    expression depth (a 500). Words past the limit are ignored, long ones cut.
    """

    MAX_TERMS = 10
    MAX_TERM_LENGTH = 100

    def get_search_terms(self, request: Request) -> list[str]:
        terms = super().get_search_terms(request)[: self.MAX_TERMS]
        return [term[: self.MAX_TERM_LENGTH] for term in terms]


class ProductFilter(django_filters.FilterSet):
    in_stock = django_filters.BooleanFilter(method="filter_in_stock", label="Only products with stock")

    class Meta:
        model = Product
        fields: list[str] = []

    def filter_in_stock(self, queryset: QuerySet[Product], name: str, value: bool | None) -> QuerySet[Product]:
        if value is None:
            return queryset
        return queryset.filter(stock__gt=0) if value else queryset.filter(stock=0)


class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Product],
):
    serializer_class = ProductSerializer
    lookup_field = "sku"
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, BoundedSearchFilter, filters.OrderingFilter]
    filterset_class = ProductFilter
    search_fields = ["name", "description"]
    ordering_fields = ["price", "name"]
    ordering = ["name", "sku"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_permissions(self) -> list[BasePermission]:
        # Anyone reads the catalog (AllowAny also tells the schema that no login is needed);
        # writing needs add_product / change_product.
        if self.request.method in SAFE_METHODS:
            return [AllowAny()]
        return [CatalogPermissions()]

    def get_queryset(self) -> QuerySet[Product]:
        return selectors.product_list()
