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


def save_stock_from_list(admin_browser, product, stock: str, seen: int | None = None):
    """Submit the product list's editable stock column for one product, as shown with ``seen``."""
    return admin_browser.post(
        "/admin/shop/product/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(product.pk),
            "form-0-stock_0": stock,
            "form-0-stock_1": str(product.stock if seen is None else seen),
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


def test_saving_the_list_does_not_undo_reservations_made_while_it_was_open(admin_browser):
    # given the list showed 60 units, and 10 were reserved after it was drawn
    product = ProductFactory(stock=60)
    Product.objects.filter(pk=product.pk).update(stock=50)

    # when staff change that row to 70
    response = save_stock_from_list(admin_browser, product, "70", seen=60)

    # then the 10 units they added arrive on top of what is left
    assert response.status_code == 302
    assert Product.objects.get(pk=product.pk).stock == 60


def test_saving_a_new_price_on_the_change_form_keeps_the_stock_as_it_is_now(admin_browser):
    # given the change form showed 60 units, and 10 were reserved meanwhile
    product = ProductFactory(stock=60, price="10.00")
    page = admin_browser.get(f"/admin/shop/product/{product.pk}/change/").content.decode()
    assert 'name="stock_1" value="60"' in page
    Product.objects.filter(pk=product.pk).update(stock=50)

    # when staff save a new price with the stock field as they saw it
    response = admin_browser.post(
        f"/admin/shop/product/{product.pk}/change/",
        {"sku": product.sku, "name": product.name, "description": "", "price": "12.00", "currency": "USD",
         "stock_0": "60", "stock_1": "60", "_save": "Save"},
    )  # fmt: skip

    # then the price changed and the reserved units stay taken
    assert response.status_code == 302, response.content.decode()[:2000]
    product.refresh_from_db()
    assert (str(product.price), product.stock) == ("12.00", 50)


def test_reservations_cannot_be_added_by_hand(admin_browser):
    assert admin_browser.get("/admin/shop/stockreservation/add/").status_code == 403


# --- images and categories (issue 12) ----------------------------------------------------------


def jpeg_upload(name="photo.jpg", size=(1600, 1000)):
    from io import BytesIO

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format="JPEG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def product_form(product, **overrides):
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": str(product.price),
        "currency": "USD",
        "stock_0": str(product.stock),
        "stock_1": str(product.stock),
        "category": "",
        **overrides,
    }


def test_an_uploaded_image_gets_a_grid_thumbnail_and_stock_is_untouched(admin_browser):
    from PIL import Image

    from shop.images import THUMBNAIL_SIZE
    from tests.factories import CategoryFactory

    product = ProductFactory(stock=7)
    shelf = CategoryFactory()

    response = admin_browser.post(
        f"/admin/shop/product/{product.pk}/change/",
        product_form(product, image=jpeg_upload(), category=str(shelf.pk)),
    )

    product.refresh_from_db()
    assert response.status_code == 302
    assert product.category == shelf
    assert product.image.name.startswith("products/")
    with Image.open(product.thumbnail.path) as thumbnail:
        assert thumbnail.size == THUMBNAIL_SIZE  # cropped to the grid's 4:3 from a 16:10 photo
    assert product.stock == 7
    page = admin_browser.get(f"/admin/shop/product/{product.pk}/change/").content.decode()
    assert f'<img src="{product.thumbnail.url}"' in page


def test_a_file_that_is_not_an_image_is_refused(admin_browser):
    from django.core.files.uploadedfile import SimpleUploadedFile

    product = ProductFactory()

    response = admin_browser.post(
        f"/admin/shop/product/{product.pk}/change/",
        product_form(product, image=SimpleUploadedFile("evil.jpg", b"<script>", content_type="image/jpeg")),
    )

    product.refresh_from_db()
    assert response.status_code == 200
    assert "Upload a valid image" in response.content.decode()
    assert not product.image


def test_clearing_the_image_drops_the_thumbnail(admin_browser):
    from tests.factories import with_image

    product = with_image(ProductFactory())

    admin_browser.post(f"/admin/shop/product/{product.pk}/change/", product_form(product, **{"image-clear": "on"}))

    product.refresh_from_db()
    assert not product.image and not product.thumbnail


def test_categories_are_managed_in_the_admin(admin_browser):
    from shop.models import Category

    admin_browser.post("/admin/shop/category/add/", {"name": "Kitchen", "slug": "kitchen"})

    assert Category.objects.filter(slug="kitchen", name="Kitchen").exists()


def huge_png_upload(width=10_000, height=10_000):
    """A PNG of a few kilobytes that declares ``width`` by ``height`` pixels (one bit each)."""
    from io import BytesIO

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buffer = BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG", optimize=True)
    return SimpleUploadedFile("huge.png", buffer.getvalue(), content_type="image/png")


def test_an_image_of_too_many_pixels_is_refused_before_any_thumbnail(admin_browser):
    # given a 100-megapixel PNG of a few kilobytes (decoding it for the grid takes ~300 MB)
    product = ProductFactory()
    upload = huge_png_upload()
    assert upload.size < 50_000

    # when staff upload it as the product's picture
    response = admin_browser.post(f"/admin/shop/product/{product.pk}/change/", product_form(product, image=upload))

    # then the form says why, and nothing was stored or decoded into a thumbnail
    product.refresh_from_db()
    assert response.status_code == 200
    page = response.content.decode()
    assert "This image is too large: 10000x10000 pixels" in page
    assert "at most 25 megapixels" in page
    assert not product.image and not product.thumbnail


def test_the_pixel_bound_is_a_setting(admin_browser, settings):
    settings.PRODUCT_IMAGE_MAX_PIXELS = 1_000_000
    product = ProductFactory()

    refused = admin_browser.post(
        f"/admin/shop/product/{product.pk}/change/", product_form(product, image=jpeg_upload(size=(1600, 1000)))
    )
    accepted = admin_browser.post(
        f"/admin/shop/product/{product.pk}/change/", product_form(product, image=jpeg_upload(size=(1000, 1000)))
    )

    assert "at most 1 megapixels" in refused.content.decode()
    assert accepted.status_code == 302
    product.refresh_from_db()
    assert product.image and product.thumbnail
