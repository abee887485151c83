"""The pages every shop needs, as flatpages staff edit in the admin (Flat pages)."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

PAGES = [
    (
        "/contact/",
        "Contact us",
        "<p>We answer every message within one working day, Monday to Friday.</p>"
        "<ul><li>Email: <a href=\"mailto:help@northwind.example\">help@northwind.example</a></li>"
        "<li>Post: Northwind Supply, 12 Analytical Row, London N1 9GU, United Kingdom</li></ul>"
        "<p>About an order, please give its number (for example <strong>#a0e84265</strong>): you find it "
        "under \"My orders\" and in every email we send about it.</p>",
    ),
    (
        "/shipping-and-returns/",
        "Shipping and returns",
        "<h2>Shipping</h2>"
        "<p>We hand your parcel to the carrier as soon as your payment is received, and email you its "
        "tracking number. You are charged only once your items are set aside for you.</p>"
        "<h2>Returns</h2>"
        "<p>You may return anything within 30 days of delivery, unused and in its packaging, for a full "
        "refund to the payment method you used. Write to us with your order number and we will send "
        "you a return label.</p>"
        "<h2>Cancelling</h2>"
        "<p>Until your parcel is with the carrier you can cancel an order yourself from its page under "
        "\"My orders\"; anything charged is refunded.</p>",
    ),
    (
        "/privacy/",
        "Privacy",
        "<p>We keep what we need to deliver your orders: your name, email address, shipping addresses "
        "and what you ordered. We never store card numbers: the payment provider holds them and gives "
        "us a reference.</p>"
        "<p>We use one cookie to keep you signed in and your cart, and none to track you.</p>"
        "<p>To see, correct or delete what we hold about you, write to us (see Contact).</p>",
    ),
    (
        "/terms/",
        "Terms of sale",
        "<p>Prices are in US dollars and include taxes. An order is a contract once it is on its way; "
        "until then either of us may cancel it, and anything charged is refunded.</p>"
        "<p>If an item runs out before we can set it aside, we cancel the order and charge nothing.</p>"
        "<p>Northwind Supply is a reference shop: its payments and shipping are simulated and no real "
        "money moves.</p>",
    ),
]


def create_pages(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Site = apps.get_model("sites", "Site")
    FlatPage = apps.get_model("flatpages", "FlatPage")
    # The sites framework creates its default site after every migration has run: make it now.
    site, _ = Site.objects.get_or_create(pk=1, defaults={"domain": "example.com", "name": "example.com"})
    for url, title, content in PAGES:
        page, created = FlatPage.objects.get_or_create(url=url, defaults={"title": title, "content": content})
        if created:
            page.sites.add(site)


def remove_pages(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("flatpages", "FlatPage").objects.filter(url__in=[url for url, _, _ in PAGES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0005_heartbeat"),
        ("flatpages", "0001_initial"),
        ("sites", "0002_alter_domain_unique"),
    ]

    operations = [migrations.RunPython(create_pages, remove_pages)]
