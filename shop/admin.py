from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.bounds import integer_column_max
from shop import services
from shop.images import product_thumbnail_refresh
from shop.models import Category, Product, StockReservation


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


class StockWidget(forms.MultiWidget):
    """The stock input, and beside it (hidden) the count the page showed."""

    def __init__(self) -> None:
        super().__init__([forms.NumberInput(attrs={"min": 0, "class": "vIntegerField"}), forms.HiddenInput()])

    def decompress(self, value: Any) -> list[Any]:
        return [value, value]


class StockField(forms.MultiValueField):
    """Stock as staff edit it: (new count, count they saw). The difference is what they meant:
    reservations made while the page was open are not undone by saving it."""

    widget = StockWidget

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("max_value", None)
        kwargs.pop("min_value", None)
        # The column's largest value: more would fail at the database, a 500 instead of a form error.
        most = integer_column_max(Product, "stock")
        counts = [forms.IntegerField(min_value=0, max_value=most), forms.IntegerField(min_value=0, max_value=most)]
        super().__init__(fields=counts, **kwargs)

    def compress(self, data_list: list[Any]) -> tuple[int, int] | None:
        return (data_list[0], data_list[1]) if data_list else None


class ProductForm(forms.ModelForm[Product]):
    # Not the model's field: the form never writes stock itself (see ProductAdmin.save_model).
    stock = StockField(label="Stock")

    class Meta:
        model = Product
        exclude = ["stock"]  # noqa: DJ006 -- the one field the form must never write

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.setdefault("stock", self.instance.stock)

    def clean_image(self) -> Any:
        # "Clear" ticked gives False, which only a ModelForm's own save understands; the
        # product_update service sets fields as given, so it gets the empty file name instead.
        image = self.cleaned_data.get("image")
        return "" if image is False else image


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin[Category]):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    form = ProductForm
    list_display = ["sku", "name", "category", "price", "currency", "stock", "updated_at"]
    list_editable = ["stock"]
    list_filter = [LowStockFilter, "category"]
    list_select_related = ["category"]
    search_fields = ["sku", "name", "description"]
    fields = ["sku", "name", "category", "description", "price", "currency", "stock", "image", "grid_thumbnail"]
    readonly_fields = ["grid_thumbnail"]

    @admin.display(description="thumbnail in the catalog grid")
    def grid_thumbnail(self, product: Product) -> SafeString | str:
        if not product.thumbnail:
            return "None: upload an image and save."
        return format_html('<img src="{}" width="240" height="180" alt="">', product.thumbnail.url)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm[Product]]:
        kwargs.setdefault("form", ProductForm)
        return super().get_changelist_form(request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Product, form: forms.ModelForm[Product], change: bool) -> None:
        """Only the fields staff changed are written; stock moves by the difference they made."""
        new_stock, seen = form.cleaned_data["stock"]
        if not change:
            obj.stock = new_stock
            obj.save()
            return
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name != "stock"}
        if new_stock != seen:
            changes["stock"] = new_stock
        try:
            services.product_update(product=Product.objects.get(pk=obj.pk), changes=changes, stock_seen=seen)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), level="error")
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if "image" in form.changed_data:  # a new picture (or none): its grid thumbnail follows
            product_thumbnail_refresh(product=form.instance)


@admin.register(StockReservation)
class StockReservationAdmin(admin.ModelAdmin[StockReservation]):
    list_display = ["order_id", "line_id", "product", "quantity", "status", "created_at", "released_at"]
    list_filter = ["status"]
    list_select_related = ["product"]
    search_fields = ["=order_id"]
    readonly_fields = ["order_id", "line_id", "product", "quantity", "status", "created_at", "released_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # reservations are made by orders, never by hand
