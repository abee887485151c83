"""Formatting shared by the storefront, the emails and the admin: order numbers, addresses."""

from collections.abc import Mapping
from typing import Any

from django import template

from core import addresses

register = template.Library()


@register.filter
def order_number(order_id: object) -> str:
    """The short number customers see and staff search by: the UUID's first 8 hex digits."""
    return str(order_id).replace("-", "")[:8]


@register.simple_tag
def address_lines(address: Mapping[str, Any] | None) -> list[str]:
    """A shipping address as the lines of an envelope, as its country writes them (core.addresses)."""
    return addresses.address_lines(address)
