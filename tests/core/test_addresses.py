"""Addresses as each country's post writes them, and each country's postal codes."""

import socket

import pytest
from django.core.exceptions import ValidationError

from core.addresses import address_lines, postal_code_clean

ADA = {"name": "Ada Lovelace", "line1": "12 Analytical Row"}


@pytest.mark.parametrize(
    ("place", "envelope"),
    [
        # the UK: the post town, then the postcode, each on its own line, in capitals (Royal Mail)
        (
            {"line2": "Flat 2", "city": "London", "postal_code": "N1 9GU", "country": "GB"},
            ["12 Analytical Row", "Flat 2", "LONDON", "N1 9GU", "UNITED KINGDOM"],
        ),
        # the US: city, state and ZIP on one line; the shop asks no state: one typed with the city reads as usual
        (
            {"city": "Springfield, IL", "postal_code": "62701", "country": "US"},
            ["12 Analytical Row", "SPRINGFIELD, IL 62701", "UNITED STATES"],
        ),
        # and without one, the comma that would have come before it goes too
        (
            {"city": "Springfield", "postal_code": "62701", "country": "US"},
            ["12 Analytical Row", "SPRINGFIELD 62701", "UNITED STATES"],
        ),
        # Germany: the postcode before the town
        ({"city": "Berlin", "postal_code": "10115", "country": "DE"}, ["12 Analytical Row", "10115 BERLIN", "GERMANY"]),
        # Japan in Latin script: its Latin order, the prefecture after the street
        (
            {"city": "Tokyo", "postal_code": "100-0001", "country": "JP"},
            ["12 Analytical Row, TOKYO", "100-0001", "JAPAN"],
        ),
        # the Emirates write no city and no postal code, but the emirate: the city the customer gave
        (
            {"city": "Dubai", "postal_code": "00000", "country": "AE"},
            ["12 Analytical Row", "Dubai", "UNITED ARAB EMIRATES"],
        ),
    ],
)
def test_an_address_reads_as_its_country_writes_it(place, envelope):
    assert address_lines(ADA | place) == ["Ada Lovelace", *envelope]


def test_an_address_in_japanese_script_is_written_in_japanese_order():
    address = {"name": "山田太郎", "line1": "千代田1-1", "city": "東京都", "postal_code": "100-0001", "country": "JP"}

    assert address_lines(address) == ["〒100-0001", "東京都", "千代田1-1", "山田太郎", "JAPAN"]


def test_an_address_of_a_country_the_data_does_not_know_keeps_the_shops_own_order():
    address = {"name": "Ada", "line1": "1 Main St", "city": "Nowhere", "postal_code": "123", "country": "QQ"}

    assert address_lines(address) == ["Ada", "1 Main St", "123 Nowhere", "QQ"]
    assert address_lines(None) == [] and address_lines({}) == []


@pytest.mark.parametrize(
    ("country", "typed", "kept"),
    [
        ("GB", "N1 9GU", "N1 9GU"),
        ("GB", " n1   9gu ", "N1 9GU"),  # capitals, one space: as Royal Mail writes it
        ("GB", "N19GU", "N19GU"),  # valid without its space; none is put back
        ("US", "62701", "62701"),
        ("US", "62701-1234", "62701-1234"),  # ZIP+4
        ("DE", "10115", "10115"),
        ("NL", "1234 ab", "1234 AB"),
        ("CA", "m5v 2t6", "M5V 2T6"),
        ("AE", "anything at all", "anything at all"),  # no postal codes there: what is given
    ],
)
def test_a_postal_code_of_the_country_is_kept_as_its_post_writes_it(country, typed, kept):
    assert postal_code_clean(country=country, postal_code=typed) == kept


@pytest.mark.parametrize(
    ("country", "typed"),
    [
        ("GB", "12345"),
        ("GB", "N1 9GUXYZ"),  # a valid start is not enough
        ("US", "1234"),
        ("US", "N1 9GU"),
        ("DE", "1011"),
        ("CA", "12345"),
    ],
)
def test_a_postal_code_that_is_not_one_of_the_countrys_is_refused_with_an_example(country, typed):
    with pytest.raises(ValidationError) as refused:
        postal_code_clean(country=country, postal_code=typed)

    assert refused.value.code == "invalid_postal_code"
    [message] = refused.value.messages
    assert message.startswith("Enter a valid postal code for ") and "(for example " in message


def test_nothing_is_downloaded_the_data_ships_in_the_package(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the address data tried the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    assert address_lines(ADA | {"city": "Paris", "postal_code": "75001", "country": "FR"})[-2:] == [
        "75001 PARIS",
        "FRANCE",
    ]
    assert postal_code_clean(country="BR", postal_code="01310-100") == "01310-100"
