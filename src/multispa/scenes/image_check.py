"""A cheap yet real check of the colour image of every frame a scene or clip is read from.

A JPEG passes when it starts with the start-of-image marker (``ff d8 ff``), ends with the
end-of-image marker (``ff d9``, zero padding after it allowed) and its header parses as a JPEG
of the expected size. No pixel data is decoded: the check costs about as much as reading the
header (``benchmarks/bench_image_check.py`` prints the figures against a full decode). It catches
zeroed, truncated, foreign and wrongly sized payloads; damage inside the entropy-coded data
is not caught (libjpeg itself decodes such data, with a warning). PNG and raw colour payloads
(rare ``.sens`` compressions) are decoded, as the cache builder decodes them anyway.

A frame whose image fails is dropped and counted (``bad_images``); a scene or clip where more
than :data:`MAX_BAD_IMAGE_FRACTION` of the frames fail is unusable (:func:`too_many_bad`).
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

__all__ = [
    "MAX_BAD_IMAGE_FRACTION", "TOO_MANY_BAD_IMAGES", "image_defect", "jpeg_defect", "too_many_bad",
]

#: More bad images than this fraction of the frames makes a scene or clip unusable.
MAX_BAD_IMAGE_FRACTION = 0.5
#: The reason code that opens the message of :func:`too_many_bad` (as clip pose reasons do).
TOO_MANY_BAD_IMAGES = "too_many_bad_images"

_SOI = b"\xff\xd8\xff"
_EOI = b"\xff\xd9"


def jpeg_defect(data: bytes, size: tuple[int, int] | None = None) -> str | None:
    """Why ``data`` is not a complete JPEG of ``size`` = (width, height) pixels, or None.

    >>> jpeg_defect(bytes(100))
    'not a JPEG (starts with 00 00 00, expected ff d8 ff)'
    """
    if data[:3] != _SOI:
        return f"not a JPEG (starts with {data[:3].hex(' ') or 'nothing'}, expected ff d8 ff)"
    end = len(data)
    while end > 3 and data[end - 1] == 0:
        end -= 1
    if data[end - 2:end] != _EOI:
        return "truncated JPEG (no end-of-image marker)"
    try:
        with Image.open(io.BytesIO(data)) as image:
            found_format, found_size = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        return f"unreadable JPEG header ({' '.join(str(error).split()) or type(error).__name__})"
    if found_format != "JPEG":
        return f"a {found_format} image, expected JPEG"
    if size is not None and tuple(found_size) != tuple(size):
        return (f"{found_size[0]}x{found_size[1]} pixels, expected {size[0]}x{size[1]} like the "
                "other frames")
    return None


def image_defect(data: bytes, image_format: str, size: tuple[int, int]) -> str | None:
    """Why a colour payload in ``image_format`` (``jpeg``, ``png`` or ``raw`` RGB) is not a
    usable ``size`` image, or None."""
    if image_format == "jpeg":
        return jpeg_defect(data, size)
    if image_format == "raw":
        expected = size[0] * size[1] * 3
        return None if len(data) == expected else (
            f"raw RGB payload of {len(data)} bytes, expected {expected}")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            found = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        return f"undecodable {image_format} image ({' '.join(str(error).split())})"
    if tuple(found) != tuple(size):
        return f"{found[0]}x{found[1]} pixels, expected {size[0]}x{size[1]}"
    return None


def too_many_bad(bad: dict[int, str], frames: int) -> str | None:
    """The reason a scene or clip is unusable because of its bad images
    (``"too_many_bad_images: <details>"``), or None.

    Args:
        bad: frame index → defect, for the frames whose image failed.
        frames: frames checked.
    """
    if not bad or len(bad) <= MAX_BAD_IMAGE_FRACTION * frames:
        return None
    first = min(bad)
    return (f"{TOO_MANY_BAD_IMAGES}: {len(bad)} of {frames} frames have unusable colour images "
            f"(more than {MAX_BAD_IMAGE_FRACTION:.0%}; first: frame {first}: {bad[first]})")
