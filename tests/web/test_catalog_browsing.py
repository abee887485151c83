"""Catalog images, categories, sorting and the in-stock filter, all in server-rendered pages."""

import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from PIL import Image

from shop.images import THUMBNAIL_SIZE
from shop.models import Category, Product
from tests.factories import CategoryFactory, ProductFactory, with_image

pytestmark = pytest.mark.django_db


def names_in_order(html: str) -> list[str]:
    return re.findall(r'<h2><a href="/products/[^/]+/">([^<]+)</a></h2>', html)


def test_product_cards_show_a_grid_sized_thumbnail_that_is_served(client):
    # given a product with a photo
    product = with_image(ProductFactory(name="Enamel mug"))

    # when the catalog is opened
    html = client.get("/").content.decode()

    # then its card shows the thumbnail, which is a 4:3 picture sized for the grid and is served
    assert f'src="{product.thumbnail.url}"' in html
    assert 'width="480" height="360"' in html
    with Image.open(product.thumbnail.path) as picture:
        assert picture.size == THUMBNAIL_SIZE
    served = client.get(product.thumbnail.url)
    assert served.status_code == 200
    assert b"".join(served.streaming_content)[:3] == b"\xff\xd8\xff"  # a JPEG


def test_a_product_without_a_photo_gets_a_placeholder(client):
    ProductFactory(name="Plain product")

    html = client.get("/").content.decode()

    assert "No photo yet" in html


def test_product_page_shows_the_photo_and_its_category(client):
    shelf = CategoryFactory(name="Kitchen", slug="kitchen")
    product = with_image(ProductFactory(name="Enamel mug", category=shelf))

    html = client.get(f"/products/{product.sku}/").content.decode()

    assert f'src="{product.image.url}" alt="Enamel mug"' in html
    assert 'href="/categories/kitchen/"' in html


def test_a_category_page_shows_only_that_category(client):
    # given products on two shelves
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen")
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    ProductFactory(name="Enamel mug", category=kitchen)
    ProductFactory(name="Cotton tee", category=apparel)

    # when the kitchen page is opened
    response = client.get("/categories/kitchen/")

    # then it is the catalog narrowed to the kitchen, with its name and the other categories linked
    html = response.content.decode()
    assert response.status_code == 200
    assert names_in_order(html) == ["Enamel mug"]
    assert "<h1>Kitchen" in html
    assert 'href="/categories/apparel/"' in html
    assert 'href="/categories/kitchen/" aria-current="page"' in html


def test_the_catalog_links_every_category(client):
    CategoryFactory(name="Kitchen", slug="kitchen")

    html = client.get("/").content.decode()

    assert 'href="/categories/kitchen/"' in html
    assert 'href="/" aria-current="page">All products' in html


def test_an_unknown_category_is_404(client):
    assert client.get("/categories/nope/").status_code == 404


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("price", ["Cheap", "Middle", "Dear"]),
        ("-price", ["Dear", "Middle", "Cheap"]),
        ("name", ["Cheap", "Dear", "Middle"]),
        ("-name", ["Middle", "Dear", "Cheap"]),
        ("nonsense", ["Cheap", "Dear", "Middle"]),  # an unknown sort falls back to the name
    ],
)
def test_the_catalog_can_be_sorted(client, sort, expected):
    ProductFactory(name="Middle", price=Decimal("20.00"))
    ProductFactory(name="Dear", price=Decimal("90.00"))
    ProductFactory(name="Cheap", price=Decimal("5.00"))

    html = client.get("/", {"sort": sort}).content.decode()

    assert names_in_order(html) == expected


def test_the_in_stock_filter_hides_sold_out_products(client):
    ProductFactory(name="Available", stock=3)
    ProductFactory(name="Sold out", stock=0)

    html = client.get("/", {"in_stock": "on"}).content.decode()

    assert names_in_order(html) == ["Available"]
    assert 'id="id_in_stock" checked' in html
    assert "1 product<" in html


def test_filters_combine_with_search_and_category(client):
    kitchen = CategoryFactory(slug="kitchen")
    ProductFactory(name="Blue mug", category=kitchen, stock=0)
    ProductFactory(name="Red mug", category=kitchen, price=Decimal("8.00"))
    ProductFactory(name="Green mug", category=kitchen, price=Decimal("3.00"))
    ProductFactory(name="Mug poster")  # no category

    html = client.get("/categories/kitchen/", {"q": "mug", "in_stock": "on", "sort": "price"}).content.decode()

    assert names_in_order(html) == ["Green mug", "Red mug"]
    # the search box keeps the sort and the filter, the filter form keeps the search
    assert '<input type="hidden" name="sort" value="price">' in html
    assert '<input type="hidden" name="in_stock" value="on">' in html
    assert '<input type="hidden" name="q" value="mug">' in html


def test_pagination_keeps_the_search_sort_and_filter(client):
    for number in range(15):
        ProductFactory(name=f"Mug {number:02d}", price=Decimal(10 + number))

    first = client.get("/", {"q": "mug", "sort": "-price", "in_stock": "on"}).content.decode()
    link = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(link).content.decode()

    assert "q=mug" in link and "sort=-price" in link and "in_stock=on" in link and "page=2" in link
    assert names_in_order(second) == ["Mug 02", "Mug 01", "Mug 00"]


def test_the_api_keeps_its_product_shape(client):
    with_image(ProductFactory(sku="MUG-1", category=CategoryFactory()))

    product = client.get("/api/products/MUG-1/").json()

    assert set(product) == {"sku", "name", "description", "price", "currency", "stock"}


def test_the_demo_seed_draws_its_own_pictures_and_shelves(db):
    call_command("seed_demo", stdout=io.StringIO())

    products = Product.objects.all()
    assert products.count() == 15
    assert Category.objects.count() == 4
    assert all(product.category_id for product in products)
    for product in products:
        with Image.open(product.thumbnail.path) as picture:
            assert picture.size == THUMBNAIL_SIZE


def test_a_catalog_page_reads_the_database_three_times_however_many_cards(client, django_assert_num_queries):
    # given a full page of products, each on a shelf
    shelves = [CategoryFactory() for _ in range(3)]
    for number in range(12):
        ProductFactory(category=shelves[number % 3])

    # then the page costs a count, the page of products (with their shelves) and the shelf links
    with django_assert_num_queries(3):
        response = client.get("/")
    # and every card is on it, with its shelf
    html = response.content.decode()
    assert response.status_code == 200
    for product in Product.objects.select_related("category"):
        assert product.name in html
        assert product.category.name in html
