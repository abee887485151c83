"""Bounds on what staff may upload as a product image, checked before anything decodes it."""

import warnings
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image


def validate_image_pixels(image: Any) -> None:
    """Refuse a newly uploaded image of more than ``PRODUCT_IMAGE_MAX_PIXELS`` pixels.

    The width and height come from the file's header (``Image.open`` decodes no pixel): a PNG
    of a few kilobytes can declare 100 Mpx, and decoding it for the grid thumbnail would take
    some 300 MB. A size in bytes cannot see that, and Pillow's own bomb check refuses only
    above about 179 Mpx. A validator of the model's field, so the admin's form and any API
    serializer of the model refuse it alike, before ``shop.images`` makes a thumbnail.
    """
    if getattr(image, "_committed", False):
        return  # the stored image, checked when it was uploaded: nothing new to read
    limit: int = settings.PRODUCT_IMAGE_MAX_PIXELS
    position = image.tell()
    try:
        image.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in words
            with Image.open(image) as header:
                width, height = header.size
    except Image.DecompressionBombError:
        width, height = 0, 0  # more pixels than even Pillow accepts
    except (OSError, ValueError) as exc:
        raise ValidationError("Upload a valid image.", code="invalid_image") from exc
    finally:
        image.seek(position)
    if width * height == 0 or width * height > limit:
        described = f"{width}x{height} pixels" if width * height else "far more pixels than that"
        raise ValidationError(
            "This image is too large: %(described)s, and the shop takes at most %(limit)s megapixels. "
            "Scale it down and upload it again.",
            code="image_too_many_pixels",
            params={"described": described, "limit": f"{limit / 1_000_000:g}"},
        )
