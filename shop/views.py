"""Storefront pages for the catalog and the cart. Thin: reads come from ``shop.selectors``."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from shop import selectors
from shop.cart import Cart, CartError, cart_total
from shop.forms import AddToCartForm, CartLineForm, SearchForm

PAGE_SIZE = 12


@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET)
    query = search.cleaned_data["q"].strip() if search.is_valid() else ""
    page = Paginator(selectors.product_search(query=query), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "shop/catalog.html", {"search": search, "query": query, "page": page})


@require_http_methods(["GET", "POST"])
def product_detail(request: HttpRequest, sku: str) -> HttpResponse:
    product = selectors.product_get(sku=sku)
    if product is None:
        raise Http404("No such product.")
    form = AddToCartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            Cart(request.session).add(sku=product.sku, quantity=form.cleaned_data["quantity"])
        except CartError as exc:
            messages.error(request, str(exc))
            return redirect("shop:cart")
        messages.success(request, f"Added {product.name} (quantity {form.cleaned_data['quantity']}) to your cart.")
        return redirect("shop:cart")
    return render(request, "shop/product_detail.html", {"product": product, "form": form})


@require_GET
def cart_detail(request: HttpRequest) -> HttpResponse:
    lines = Cart(request.session).lines()
    return render(request, "shop/cart.html", {"lines": lines, "total": cart_total(lines)})


@require_POST
def cart_update(request: HttpRequest, sku: str) -> HttpResponse:
    form = CartLineForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a quantity from 0 to 100.")
        return redirect("shop:cart")
    if not Cart(request.session).set(sku=sku, quantity=form.cleaned_data["quantity"]):
        messages.error(request, "That product is not in your cart.")
        return redirect("shop:cart")
    messages.success(request, "Your cart was updated.")
    return redirect("shop:cart")


@require_POST
def cart_remove(request: HttpRequest, sku: str) -> HttpResponse:
    Cart(request.session).remove(sku=sku)
    messages.success(request, "The item was removed from your cart.")
    return redirect("shop:cart")
