from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework import filters, mixins, permissions, serializers, viewsets

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
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter, filters.OrderingFilter]
    filterset_class = ProductFilter
    search_fields = ["name", "description"]
    ordering_fields = ["price", "name"]
    ordering = ["name", "sku"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_permissions(self) -> list[permissions.BasePermission]:
        # Anyone reads the catalog; only staff change it.
        if self.request.method in permissions.SAFE_METHODS:
            return [permissions.AllowAny()]
        return [permissions.IsAdminUser()]

    def get_queryset(self) -> QuerySet[Product]:
        return selectors.product_list()
