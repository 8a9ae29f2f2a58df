"""QR codes as SVG: the one home for how the pages draw them (segno, no script, nothing
fetched, so the pages' CSP holds and what a code carries never leaves the response)."""

from __future__ import annotations

import io


def qr_svg(text: str, *, scale: int = 4, border: int = 4) -> str:
    """The SVG markup (no XML declaration), for a page or a JSON answer to show."""
    import segno

    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="svg", scale=scale,
                                                  border=border, xmldecl=False, title="QR",
                                                  dark="#000", light="#fff")
    return out.getvalue().decode("utf-8")


def qr_data_uri(text: str, *, scale: int = 4, border: int = 4) -> str:
    """A ``data:`` URI of the SVG, for an ``<img src>`` (the CSP allows ``img-src data:``)."""
    import segno

    return segno.make(text, error="m", micro=False).svg_data_uri(
        scale=scale, border=border, dark="#000", light="#fff")
