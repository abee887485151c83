"""Formatting shared by the storefront and the admin: order numbers, countries, addresses."""

from typing import Any

from django import template
from django_countries import countries

register = template.Library()


@register.filter
def order_number(order_id: object) -> str:
    """The short number customers see and staff search by: the UUID's first 8 hex digits."""
    return str(order_id).replace("-", "")[:8]


@register.filter
def country_name(code: str | None) -> str:
    """ "DE" → "Germany"; an unknown code is shown as it is."""
    if not code:
        return ""
    return str(countries.name(code)) or code


@register.simple_tag
def address_lines(address: dict[str, Any] | None) -> list[str]:
    """A shipping address as the lines of an envelope, the country by its name."""
    if not address:
        return []
    city = " ".join(part for part in (address.get("postal_code"), address.get("city")) if part)
    country = country_name(address.get("country"))
    lines = [address.get("name"), address.get("line1"), address.get("line2"), city, country]
    return [str(line) for line in lines if line]
