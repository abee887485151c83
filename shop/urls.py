from django.urls import path

from shop import views

app_name = "shop"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("categories/<slug:slug>/", views.catalog, name="category"),
    path("products/<str:sku>/", views.product_detail, name="product"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/<str:sku>/update/", views.cart_update, name="cart-update"),
    path("cart/<str:sku>/remove/", views.cart_remove, name="cart-remove"),
]
