"""Reading a PDF the way a printer and a person would: its fonts (pdffonts), its text with
each character's box (pdfplumber), the page as pixels (pdftoppm) and the QR codes on it
(zbarimg). The tools come from scripts/test-deps.sh (poppler-utils, zbar-tools)."""

from __future__ import annotations

import io
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pdfplumber


@dataclass(frozen=True)
class Box:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float

    def overlaps(self, other: Box, slack: float = 0.3) -> bool:
        """Ink on ink: the boxes share more than ``slack`` points both ways."""
        return (min(self.x1, other.x1) - max(self.x0, other.x0) > slack
                and min(self.bottom, other.bottom) - max(self.top, other.top) > slack)


def fonts(pdf: bytes) -> list[dict[str, str]]:
    """pdffonts' table: name, type, emb, sub per font."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    rows = []
    for line in out[2:]:
        parts = line.split()
        # name type... encoding emb sub uni object-number generation
        rows.append({"name": parts[0], "emb": parts[-5], "sub": parts[-4],
                     "type": " ".join(parts[1:-6])})
    return rows


def pages(pdf: bytes) -> list[list[Box]]:
    """Every drawn character (spaces left out) with its box, page by page."""
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return [[Box(c["text"], c["x0"], c["top"], c["x1"], c["bottom"])
                 for c in page.chars if c["text"].strip()] for page in doc.pages]


def page_text(pdf: bytes) -> list[str]:
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return [page.extract_text() or "" for page in doc.pages]


def overlapping(boxes: list[Box]) -> list[tuple[Box, Box]]:
    """Pairs of characters whose ink would touch (a sweep along x keeps it fast)."""
    ordered = sorted(boxes, key=lambda b: b.x0)
    found: list[tuple[Box, Box]] = []
    for i, box in enumerate(ordered):
        for other in ordered[i + 1:]:
            if other.x0 >= box.x1:
                break
            if box.overlaps(other):
                found.append((box, other))
    return found


def render(pdf: bytes, page: int, dpi: int = 150) -> bytes:
    """One page as a PNG, by poppler's pdftoppm (what a print preview shows)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.pdf"
        path.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page),
                        "-png", "-singlefile", str(path), str(Path(tmp) / "page")],
                       check=True, capture_output=True)
        return (Path(tmp) / "page.png").read_bytes()


def qr_codes(png: bytes) -> list[str]:
    """Every QR code zbarimg finds on the image, decoded."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.png"
        path.write_bytes(png)
        out = subprocess.run(["zbarimg", "--quiet", "-Sdisable", "-Sqrcode.enable",
                              str(path)], capture_output=True, text=True).stdout
    return [line.removeprefix("QR-Code:") for line in out.splitlines()
            if line.startswith("QR-Code:")]
