"""Printable first-password sheets: one PDF, a new page per class, one cut-out slip per
student. Japanese text uses reportlab's built-in CID font (no font file needed)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from itertools import groupby

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "HeiseiKakuGo-W5"
COLUMNS, ROWS = 2, 5  # slips per page
MARGIN = 12 * mm


#: The one line that tells the child the slip's password is for the first sign-in only
#: (the provider asks for a new one then: idp.account.first_password_views).
CHANGE_AT_FIRST_SIGN_IN = "はじめてサインインしたら、じぶんだけのパスワードに変えてね。"


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def class_key(entry: dict[str, str]) -> tuple[str, str, str]:
    return (entry.get("school_code", ""), entry.get("grade", ""), entry.get("class_name", ""))


def class_label(entry: dict[str, str]) -> str:
    grade, klass = entry.get("grade", ""), entry.get("class_name", "")
    parts = [entry.get("school_name", "")]
    if grade:
        parts.append(f"{grade}年")
    if klass:
        parts.append(f"{klass}組")
    return " ".join(p for p in parts if p)


def first_password_pdf(entries: Iterable[dict[str, str]], *, issuer: str) -> bytes:
    """A PDF: per class, slips with the school, the ID and the first password."""
    font = _font()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle("はじめてのパスワード")
    width, height = A4
    slip_w = (width - 2 * MARGIN) / COLUMNS
    slip_h = (height - 2 * MARGIN - 14 * mm) / ROWS
    ordered = sorted(entries, key=lambda e: (*class_key(e), e.get("login_id", "")))
    pages = 0
    for _, group in groupby(ordered, key=class_key):
        members = list(group)
        for start in range(0, len(members), COLUMNS * ROWS):
            if pages:
                pdf.showPage()
            pages += 1
            pdf.setFont(font, 14)
            pdf.drawString(MARGIN, height - MARGIN - 6 * mm,
                           f"{class_label(members[0])} はじめてのパスワード")
            pdf.setFont(font, 8)
            pdf.drawRightString(width - MARGIN, height - MARGIN - 6 * mm,
                                "先生へ: 線で切って、ひとりに1まいずつわたしてください。")
            for index, entry in enumerate(members[start:start + COLUMNS * ROWS]):
                col, row = index % COLUMNS, index // COLUMNS
                x = MARGIN + col * slip_w
                y = height - MARGIN - 14 * mm - (row + 1) * slip_h
                _slip(pdf, font, entry, x, y, slip_w, slip_h, issuer)
    if not pages:
        pdf.setFont(font, 14)
        pdf.drawString(MARGIN, height - MARGIN - 6 * mm, "新しいアカウントはありません。")
    pdf.save()
    return buffer.getvalue()


def _slip(pdf, font: str, entry: dict[str, str], x: float, y: float, w: float, h: float,
          issuer: str) -> None:
    pdf.setDash(3, 3)
    pdf.rect(x, y, w, h)
    pdf.setDash()
    left, top = x + 5 * mm, y + h - 8 * mm
    pdf.setFont(font, 12)
    pdf.drawString(left, top, f"{entry.get('display_name', '')} さん")
    pdf.setFont(font, 9)
    pdf.drawString(left, top - 6 * mm, f"学校: {entry.get('school_name', '')}"
                                       f" ({entry.get('school_code', '')})")
    pdf.drawString(left, top - 11 * mm, "ID:")
    pdf.drawString(left, top - 18 * mm, "はじめてのパスワード:")
    pdf.setFont("Courier-Bold", 13)
    pdf.drawString(left + 10 * mm, top - 11 * mm, entry.get("login_id", ""))
    pdf.drawString(left + 2 * mm, top - 24 * mm, entry.get("password", ""))
    pdf.setFont(font, 8)
    pdf.drawString(left, y + 8.5 * mm, CHANGE_AT_FIRST_SIGN_IN)
    pdf.setFont(font, 7)
    pdf.drawString(left, y + 4 * mm, f"{issuer}  パスワードはだれにも見せないでね。")
