import pytest
from django.test import Client

from shop.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_low_stock_filter(admin_browser):
    ProductFactory(sku="LOW-1", stock=3)
    ProductFactory(sku="OUT-1", stock=0)
    ProductFactory(sku="LOTS-1", stock=50)

    low = admin_browser.get("/admin/shop/product/", {"stock_level": "low"}).content.decode()
    out = admin_browser.get("/admin/shop/product/", {"stock_level": "out"}).content.decode()

    assert "LOW-1" in low and "OUT-1" in low and "LOTS-1" not in low
    assert "OUT-1" in out and "LOW-1" not in out


def save_stock_from_list(admin_browser, product, stock: str):
    """Submit the product list's editable stock column for one product."""
    return admin_browser.post(
        "/admin/shop/product/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(product.pk),
            "form-0-stock": stock,
            "_save": "Save",
        },
    )


def test_stock_is_editable_from_the_list(admin_browser):
    product = ProductFactory(stock=2)

    response = save_stock_from_list(admin_browser, product, "40")

    assert response.status_code == 302
    assert Product.objects.get(pk=product.pk).stock == 40


def test_negative_stock_is_refused(admin_browser):
    product = ProductFactory(stock=2)

    response = save_stock_from_list(admin_browser, product, "-1")

    assert response.status_code == 200
    assert Product.objects.get(pk=product.pk).stock == 2


@pytest.mark.parametrize(
    "url",
    [
        "/admin/payments/payment/",
        "/admin/payments/providertransaction/",
        "/admin/shipping/shipment/",
        "/admin/shipping/carriershipment/",
    ],
)
def test_payment_and_shipping_records_are_listed_read_only(admin_browser, url):
    response = admin_browser.get(url)

    assert response.status_code == 200
    assert admin_browser.get(url + "add/").status_code == 403
