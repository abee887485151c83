from django.contrib import admin

from shop.models import Product, StockReservation


class LowStockFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock_level"

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("out", "Out of stock"), ("low", "Low (under 10)")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        if self.value() == "out":
            return queryset.filter(stock=0)
        if self.value() == "low":
            return queryset.filter(stock__lt=10)
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    list_display = ["sku", "name", "price", "currency", "stock", "updated_at"]
    list_editable = ["stock"]
    list_filter = [LowStockFilter]
    search_fields = ["sku", "name", "description"]


@admin.register(StockReservation)
class StockReservationAdmin(admin.ModelAdmin[StockReservation]):
    list_display = ["line", "product", "quantity", "status", "created_at", "released_at"]
    list_filter = ["status"]
    list_select_related = ["line", "product"]
    readonly_fields = ["line", "product", "quantity", "status", "created_at", "released_at"]
