"""The admin's search is bounded as the API's is (``core.search``): a thousand words or a word of
ten thousand characters are answered, with a message, never with a 500 (issue 33, finding 5)."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from core.admin import admin_search_string, admin_search_terms
from tests.factories import ProductFactory, StaffFactory

pytestmark = pytest.mark.django_db

BOUNDED = "Search looks for at most 10 words of at most 100 characters each"


@pytest.fixture
def admin_browser(db) -> Client:
    client = Client()
    client.force_login(StaffFactory.create(username="boss"))
    return client


@pytest.mark.parametrize("url", ["/admin/orders/order/", "/admin/shop/product/", "/admin/auth/user/"])
def test_a_thousand_one_letter_words_are_answered_with_a_message(admin_browser, url):
    response = admin_browser.get(url, {"q": " ".join("abcdefghij"[i % 10] for i in range(1000))})

    assert response.status_code == 200
    assert BOUNDED in response.content.decode()


def test_the_results_are_those_of_the_first_words(admin_browser):
    ProductFactory(sku="MUG-1", name="Enamel mug")
    ProductFactory(sku="TEE-1", name="Plain tee")

    # "enamel" and then "a" many times over: the first ten words find the mug, not the tee
    html = admin_browser.get("/admin/shop/product/", {"q": "enamel " + " ".join(["a"] * 999)}).content.decode()

    assert "MUG-1" in html and "TEE-1" not in html
    assert BOUNDED in html


def test_a_word_of_ten_thousand_characters_is_cut(admin_browser):
    ProductFactory(sku="MUG-1", name="m" * 100)

    html = admin_browser.get("/admin/shop/product/", {"q": "m" * 10_000}).content.decode()

    assert "MUG-1" in html
    assert BOUNDED in html


def test_a_search_within_the_bounds_has_no_message(admin_browser):
    ProductFactory(sku="MUG-1", name="Enamel mug")

    html = admin_browser.get("/admin/shop/product/", {"q": '"enamel mug" ' + " ".join(["m"] * 9)}).content.decode()

    assert "MUG-1" in html
    assert BOUNDED not in html


def test_every_admin_list_with_a_search_is_bounded(admin_browser):
    # ours, Django's (users, groups) and the third-party apps' (tokens, login attempts, task results)
    searched = [model_admin for model_admin in admin.site._registry.values() if model_admin.search_fields]
    assert len(searched) > 15

    for model_admin in searched:
        opts = model_admin.model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = admin_browser.get(url, {"q": " ".join(["x"] * 1000)})
        assert response.status_code == 200, url
        assert BOUNDED in response.content.decode(), url


@pytest.mark.parametrize(
    "search",
    ['"enamel mug" tee', "it's \"a 'quoted'\" word", 'back\\slash "and \\"escaped\\" quotes"', '"" x', "a,b c"],
)
def test_the_words_kept_are_searched_as_given(search):
    # the admin reads the bounded search back word for word, quoted phrases and escapes included
    words = admin_search_terms(search)

    assert admin_search_terms(admin_search_string(words)) == words
