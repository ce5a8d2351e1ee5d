"""OCR of images and scanned pages with RapidOCR (Apache-2.0): PaddleOCR's detection and
recognition models, as ONNX files inside the wheel, run by onnxruntime. Nothing is downloaded;
the engine loads once per parser process (about half a second) and reads a page in about one.
RapidOCR is imported on first use (a dispatcher, in tests/unit/test_layers.py): importing it
and onnxruntime costs a worker that never meets a scan a second at start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

_engine: Any = None
# Pixels of the longer side an image is scaled down to first: enough for text of ordinary
# size, and a bound on the time and memory one huge image takes.
MAX_SIDE = 2500


def _ocr() -> Any:
    global _engine
    if _engine is None:
        from rapidocr import RapidOCR  # loaded on first use: most files need no OCR

        _engine = RapidOCR(params={"Global.log_level": "critical"})
    return _engine


def read_image(image: Image.Image) -> str:
    """The text of an image, a line per detected line in reading order (top to bottom)."""
    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    result = _ocr()(np.asarray(image)[:, :, ::-1])  # RapidOCR takes BGR, as OpenCV does
    if result.txts is None:
        return ""
    return "\n".join(str(text) for text in result.txts if str(text).strip())
