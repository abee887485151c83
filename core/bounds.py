"""What the database can hold, so that a value too large is refused before it is written."""

from decimal import Decimal

from django.core.validators import MaxValueValidator
from django.db import models


def decimal_column_max(model: type[models.Model], field_name: str) -> Decimal:
    """The largest value the ``DecimalField`` ``model.field_name`` holds: 9999999999.99 for
    ``max_digits=12, decimal_places=2``. The database refuses more with an error, which
    would reach the client as a 500 had nothing checked the value first."""
    field = model._meta.get_field(field_name)
    if not isinstance(field, models.DecimalField) or field.max_digits is None or field.decimal_places is None:
        raise TypeError(f"{model.__name__}.{field_name} is not a DecimalField with max_digits and decimal_places")
    places = field.decimal_places
    return Decimal(10) ** (field.max_digits - places) - Decimal(1).scaleb(-places)


def integer_column_max(model: type[models.Model], field_name: str) -> int:
    """The largest value the integer column ``model.field_name`` holds on this database
    (2147483647 for a ``PositiveIntegerField`` on PostgreSQL)."""
    field = model._meta.get_field(field_name)
    limits = [v.limit_value for v in getattr(field, "validators", []) if isinstance(v, MaxValueValidator)]
    if not limits:
        raise TypeError(f"{model.__name__}.{field_name} has no largest value")
    return int(min(limits))
