from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_list, name="list"),
    path("orders/<uuid:order_id>/", views.order_detail, name="detail"),
    path("orders/<uuid:order_id>/live/", views.order_live, name="live"),
    path("orders/<uuid:order_id>/cancel/", views.order_cancel, name="cancel"),
]
