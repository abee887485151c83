import pytest
from django.test import Client

from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/cart/", "/accounts/login/", "/accounts/signup/"])
def test_pages_send_a_strict_content_security_policy(client, url):
    response = client.get(url)

    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_pages_have_no_inline_script_or_style(client, product):
    for url in ["/", f"/products/{product.sku}/", "/cart/", "/accounts/login/", "/accounts/signup/"]:
        html = client.get(url).content.decode()
        assert "<script>" not in html and "<style" not in html and " style=" not in html, url
        assert " onclick=" not in html and " onsubmit=" not in html, url


def test_htmx_is_served_by_the_app_and_told_not_to_inject_styles(client):
    html = client.get("/").content.decode()

    assert '<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>' in html
    assert '"includeIndicatorStyles": false' in html
    assert "https://" not in html.split("<body>")[0]  # nothing from a CDN in <head>


def test_forms_are_refused_without_a_csrf_token():
    # given a browser that really enforces CSRF (the test client skips it by default)
    browser = Client(enforce_csrf_checks=True)
    product = ProductFactory()

    # when a form is posted without the token
    response = browser.post(f"/products/{product.sku}/", {"quantity": 1})

    # then it is refused
    assert response.status_code == 403


def test_every_form_carries_a_csrf_token(shopper, product):
    shopper.post(f"/products/{product.sku}/", {"quantity": 1})
    for url in [f"/products/{product.sku}/", "/cart/", "/checkout/"]:
        html = shopper.get(url).content.decode()
        assert html.count("<form") - html.count('method="get"') == html.count('name="csrfmiddlewaretoken"'), url
