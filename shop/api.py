from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import filters, mixins, serializers, viewsets
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission
from rest_framework.request import Request

from core.permissions import CatalogPermissions
from core.search import search_terms_bound
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
    """``?search=``: within the bounds every search of the shop keeps (``core.search``)."""

    def get_search_terms(self, request: Request) -> list[str]:
        terms, _ = search_terms_bound(super().get_search_terms(request))
        return terms


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or ``1``/``0``), anything else an error. Django's and django-filter's
    boolean fields read an unknown value as "no filter", so ``?in_stock=maybe`` went unnoticed."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        text = str(value).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValidationError("Use true or false.", code="invalid")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


ORDERINGS = [("price", "price"), ("-price", "-price"), ("name", "name"), ("-name", "-name")]


class ProductFilter(django_filters.FilterSet):
    in_stock = StrictBooleanFilter(
        method="filter_in_stock", label="`true`: only products in stock; `false`: only those out of stock."
    )
    # A filter rather than DRF's OrderingFilter, which ignores an unknown field instead of saying so.
    ordering = django_filters.ChoiceFilter(
        choices=ORDERINGS, method="filter_ordering", label="Sort by price or name; `-` for descending."
    )

    class Meta:
        model = Product
        fields: list[str] = []

    def filter_in_stock(self, queryset: QuerySet[Product], name: str, value: bool | None) -> QuerySet[Product]:
        if value is None:
            return queryset
        return queryset.filter(stock__gt=0) if value else queryset.filter(stock=0)

    def filter_ordering(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet[Product]:
        # The SKU breaks ties, so pages never repeat or skip a product.
        return queryset.order_by(value, "-sku" if value.startswith("-") else "sku") if value else queryset


@extend_schema(tags=["products"])
@extend_schema_view(
    list=extend_schema(summary="The catalog", description="Public. Paginated, by name unless `ordering` says else."),
    retrieve=extend_schema(summary="One product", description="Public. By SKU, e.g. `MUG-001`."),
    create=extend_schema(
        summary="Add a product",
        description="Staff with the `add_product` permission.",
        examples=[
            OpenApiExample(
                "A new product",
                value={
                    "sku": "MUG-016",
                    "name": "Travel mug",
                    "description": "Double-walled steel.",
                    "price": "18.50",
                    "stock": 40,
                },
                request_only=True,
            )
        ],
    ),
    partial_update=extend_schema(
        summary="Change a product",
        description="Staff with the `change_product` permission. Fields left out are unchanged (`stock` too).",
        examples=[OpenApiExample("A new price", value={"price": "13.00"}, request_only=True)],
    ),
)
class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Product],
):
    serializer_class = ProductSerializer
    lookup_field = "sku"
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, BoundedSearchFilter]
    filterset_class = ProductFilter
    search_fields = ["name", "description"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_permissions(self) -> list[BasePermission]:
        # Anyone reads the catalog (AllowAny also tells the schema that no login is needed);
        # writing needs add_product / change_product.
        if self.request.method in SAFE_METHODS:
            return [AllowAny()]
        return [CatalogPermissions()]

    def get_queryset(self) -> QuerySet[Product]:
        return selectors.product_list()
