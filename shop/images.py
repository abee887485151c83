"""Product images: the grid thumbnail of an uploaded photo, and the demo catalog's own pictures.

Written with Pillow directly rather than a thumbnail package (sorl-thumbnail, easy-thumbnails):
the catalog needs one size, made once when the image changes, and those packages bring a cache
table, a key-value store and template tags for sizes chosen at render time, which this shop
does not use.
"""

import colorsys
import hashlib
from io import BytesIO

from django.core.files.base import ContentFile
from PIL import Image, ImageDraw, ImageOps

from shop.models import Product

# The grid shows cards about 16-20 rem wide; twice that for high-density screens, at 4:3.
THUMBNAIL_SIZE = (480, 360)
DEMO_IMAGE_SIZE = (1200, 900)


def product_thumbnail_refresh(*, product: Product) -> None:
    """Make (or drop) ``product.thumbnail`` from ``product.image`` and save the product.

    Side effects: writes a JPEG under MEDIA_ROOT/products/thumbs/ and saves the product's
    ``thumbnail`` field only (never ``stock``, which the saga changes concurrently).
    """
    if not product.image:
        if product.thumbnail:
            product.thumbnail.delete(save=False)
        Product.objects.filter(pk=product.pk).update(thumbnail="")
        return
    product.image.open("rb")
    with Image.open(product.image) as original:
        # A JPEG decodes straight at a fraction of its size (at least the grid's, either way
        # up): a fraction of the memory. The pixel bound (shop/validators.py) caps the rest.
        original.draft("RGB", (max(THUMBNAIL_SIZE), max(THUMBNAIL_SIZE)))
        # Crop to the grid's 4:3 around the centre, so every card's picture lines up.
        picture = ImageOps.fit(ImageOps.exif_transpose(original).convert("RGB"), THUMBNAIL_SIZE)
    product.image.close()
    buffer = BytesIO()
    picture.save(buffer, format="JPEG", quality=82, optimize=True, progressive=True)
    if product.thumbnail:
        product.thumbnail.delete(save=False)  # the previous picture's; its name is reused
    product.thumbnail.save(f"{product.sku.lower()}.jpg", ContentFile(buffer.getvalue()), save=False)
    Product.objects.filter(pk=product.pk).update(thumbnail=product.thumbnail.name)


def demo_image(*, sku: str, label: str) -> ContentFile[bytes]:
    """A picture for a demo product, drawn here: nothing is downloaded.

    A soft two-tone background picked from the SKU, a few shapes and the product's initials,
    so the demo grid looks like a catalog of distinct products.
    """
    digest = hashlib.sha256(sku.encode()).digest()
    hue = digest[0] / 255
    base = _hsv(hue, 0.28, 0.93)
    deep = _hsv(hue, 0.55, 0.55)
    width, height = DEMO_IMAGE_SIZE
    image = Image.new("RGB", DEMO_IMAGE_SIZE, base)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, int(height * 0.72), width, height), fill=_hsv(hue, 0.22, 0.85))
    cx, cy, r = width // 2, int(height * 0.46), int(height * 0.27)
    shape = digest[1] % 3
    if shape == 0:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=deep)
    elif shape == 1:
        draw.rounded_rectangle((cx - r, cy - r, cx + r, cy + r), radius=r // 4, fill=deep)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=deep)
    draw.ellipse((cx - r // 2, int(height * 0.74), cx + r // 2, int(height * 0.8)), fill=_hsv(hue, 0.3, 0.7))
    initials = "".join(word[0] for word in label.split()[:2]).upper()
    # A triangle's body is low and narrow: its initials sit lower and smaller to stay inside.
    text_y, text_size = (cy + r * 0.4, r * 0.55) if shape == 2 else (cy, r * 0.9)
    draw.text((cx, text_y), initials, fill=base, anchor="mm", font_size=text_size)
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return ContentFile(buffer.getvalue(), name=f"{sku.lower()}.jpg")


def _hsv(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)
