"""Pictures that cross a trust boundary (a box's live frame, an officer's photo): a JPEG that
decodes, within bounds, or the reason it is refused."""

from __future__ import annotations

import io


def jpeg_problem(data: bytes, max_bytes: int, max_pixels: int) -> str | None:
    """Why ``data`` is not a JPEG that decodes within the limits, or None."""
    if len(data) > max_bytes:
        return f"{len(data)} bytes > limit {max_bytes}"
    if not data.startswith(b"\xff\xd8\xff"):
        return "not a JPEG"
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            if image.size[0] * image.size[1] > max_pixels:
                return f"{image.size[0]}x{image.size[1]} pixels is too large"
            image.load()
    except Exception as exc:  # Pillow's errors on broken images are of many classes
        return f"not a JPEG that decodes: {type(exc).__name__}"
    return None
