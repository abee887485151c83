"""The pages a shop needs: contact, shipping and returns, privacy, terms (issue 31, item 5)."""

import pytest
from django.contrib.flatpages.models import FlatPage

pytestmark = pytest.mark.django_db

PAGES = {
    "/pages/contact/": "Contact us",
    "/pages/shipping-and-returns/": "Shipping and returns",
    "/pages/privacy/": "Privacy",
    "/pages/terms/": "Terms of sale",
}


def test_every_page_is_linked_from_the_footer_and_has_its_text(client):
    footer = client.get("/").content.decode().split('<footer class="site-footer">')[1]

    for url, title in PAGES.items():
        assert f'href="{url}"' in footer
        response = client.get(url)
        assert response.status_code == 200
        assert f"<h1>{title}</h1>" in response.content.decode()


def test_staff_edit_a_page_in_the_admin_and_customers_read_the_new_text(admin_client):
    page = FlatPage.objects.get(url="/contact/")

    admin_client.post(
        f"/admin/flatpages/flatpage/{page.pk}/change/",
        {"url": "/contact/", "title": "Contact us", "content": "<p>Call us on 0800 123 456.</p>", "sites": [1]},
    )

    assert "Call us on 0800 123 456." in admin_client.get("/pages/contact/").content.decode()
