from django.urls import path

from risk.api import ReviewView

urlpatterns = [path("orders/<uuid:order_id>/review/", ReviewView.as_view(), name="order-review")]
