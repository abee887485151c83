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
def catalog(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """The catalog, or one category of it (``/categories/<slug>/``): searched, filtered, sorted."""
    category = None
    if slug is not None:
        category = selectors.category_get(slug=slug)
        if category is None:
            raise Http404("No such category.")
    search = SearchForm(request.GET)
    valid = search.is_valid()  # an unknown sort or an over-long query falls back to the defaults
    query = search.cleaned_data["q"].strip() if valid else ""
    sort = (search.cleaned_data["sort"] if valid else "") or "name"
    in_stock = bool(search.cleaned_data["in_stock"]) if valid else False
    products = selectors.product_search(query=query, category=category, in_stock=in_stock, sort=sort)
    page = Paginator(products.select_related("category"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "search": search,
        "query": query,
        "sort": sort,
        "in_stock": in_stock,
        "category": category,
        "categories": selectors.category_list(),
        "page": page,
    }
    return render(request, "shop/catalog.html", context)


@require_http_methods(["GET", "POST"])
def product_detail(request: HttpRequest, sku: str) -> HttpResponse:
    product = selectors.product_get(sku=sku)
    if product is None:
        raise Http404("No such product.")
    form = AddToCartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wanted = form.cleaned_data["quantity"]
        try:
            added = Cart.of(request).add(sku=product.sku, quantity=wanted)
        except CartError as exc:
            messages.error(request, str(exc))
            return redirect("shop:cart")
        messages.add_message(request, *_added_message(product.name, wanted=wanted, added=added, stock=product.stock))
        return redirect("shop:cart")
    return render(request, "shop/product_detail.html", {"product": product, "form": form})


def _added_message(name: str, *, wanted: int, added: int, stock: int) -> tuple[int, str]:
    """What "Add to cart" did, never more than it did: the stock read when adding caps it."""
    if added == wanted:
        return messages.SUCCESS, f"Added {name} (quantity {added}) to your cart."
    if added == 0:
        return messages.WARNING, f"Your cart already holds all {stock} {name} we have: nothing more was added."
    return messages.WARNING, f"Only {stock} {name} left: we added {added}, so your cart holds all {stock}."


@require_GET
def cart_detail(request: HttpRequest) -> HttpResponse:
    lines = Cart.of(request).lines()
    return render(request, "shop/cart.html", {"lines": lines, "total": cart_total(lines)})


@require_POST
def cart_update(request: HttpRequest, sku: str) -> HttpResponse:
    form = CartLineForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a quantity from 0 to 100.")
        return redirect("shop:cart")
    if not Cart.of(request).set(sku=sku, quantity=form.cleaned_data["quantity"]):
        messages.error(request, "That product is not in your cart.")
        return redirect("shop:cart")
    messages.success(request, "Your cart was updated.")
    return redirect("shop:cart")


@require_POST
def cart_remove(request: HttpRequest, sku: str) -> HttpResponse:
    Cart.of(request).remove(sku=sku)
    messages.success(request, "The item was removed from your cart.")
    return redirect("shop:cart")
