"""Images (PNG, JPEG, TIFF): their text by OCR; a TIFF's frames are its pages."""

from __future__ import annotations

import io

from PIL import Image, ImageSequence

from workers.formats.extracted import Extracted, TextBuilder
from workers.formats.ocr import read_image

# An image that would decode to more pixels than this is refused before it is decoded (a
# decompression bomb: a small PNG of 50,000 x 50,000 pixels takes 7.5 GB as RGB).
MAX_PIXELS = 80_000_000


def extract_image(data: bytes, max_pages: int, ocr: bool) -> Extracted:
    """The OCR'd text of each frame, frame n as page n."""
    if not ocr:
        raise ValueError("OCR is off (GROUNDWIRE_OCR=false): images have no text to index")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        builder = TextBuilder()
        pages = 0
        for pages, frame in enumerate(ImageSequence.Iterator(image), start=1):
            if pages > max_pages:
                raise ValueError(f"the image has more than {max_pages} frames")
            builder.add(read_image(frame), {"page": pages})
    except Image.DecompressionBombError:
        raise ValueError(
            f"the image is over {MAX_PIXELS:,} pixels (a decompression bomb?)"
        ) from None
    except (OSError, SyntaxError) as error:
        raise ValueError(f"the image cannot be read: {error}") from None
    return builder.build(pages=pages)
