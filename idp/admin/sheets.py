"""Printable first-password slips: one PDF, a new page per class, ten cut-out slips per A4
page (2 columns x 5 rows, dashed cut lines), each with the school, the class (「先生」 for a
teacher), the name with its kana, the ID, the first password, the sign-in address in type
large enough to copy and a QR code of it.

The fonts are TrueType files embedded in the PDF as subsets (reportlab's ``TTFont``), so
every printer prints the same glyphs: a PDF that only names a font ("HeiseiKakuGo-W5")
leaves the printer or viewer to substitute one, and some print boxes instead of kana.
Debian: ``apt-get install fonts-ipaexfont-gothic`` (and ``fonts-dejavu-core`` for the
ID and password); elsewhere set ``IDP_SHEET_FONT`` to a Japanese .ttf file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from pathlib import Path

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from idp import school_class

COLUMNS, ROWS = 2, 5  # slips per page: 10
MARGIN = 10 * mm
HEADER = 16 * mm  # the page's title and the note to the teacher, above the slips
PAD = 4 * mm  # inside a slip, from its cut line
QR_SIZE = 25 * mm

#: Japanese TrueType fonts, first found wins (IPAex Gothic: Debian's fonts-ipaexfont-gothic,
#: also reached through the fonts-japanese-gothic.ttf alternative). Noto CJK is not here:
#: it ships CFF outlines in .ttc/.otf files, which reportlab cannot embed.
JAPANESE_FONTS = (
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/truetype/ipaexfont/ipaexg.ttf",
    "/Library/Fonts/ipaexg.ttf",
    "C:/Windows/Fonts/ipaexg.ttf",
)
#: A monospaced font for the ID, the password and the address: every character the same
#: width, 0/O and 1/l told apart. Without it the Japanese font is used.
MONO_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono-Bold.ttf",
)
JAPANESE, MONO = "MynagateJapanese", "MynagateMono"

#: The one line that tells the child the slip's password is for the first sign-in only
#: (the provider asks for a new one then: idp.account.first_password_views).
CHANGE_AT_FIRST_SIGN_IN = "はじめてサインインしたら、じぶんだけのパスワードに変えてね。"
KEEP_IT_SECRET = "パスワードは だれにも見せないでね。"
TEACHER_NOTE = "先生へ: 点線で切って、ひとりに1まいずつわたしてください。"
SIGN_IN_PATH = "/account/"  # the student's own page: it asks to sign in first


class SheetFontMissing(RuntimeError):
    """No Japanese TrueType font on this machine: a slip without one would print boxes."""


@dataclass(frozen=True)
class Fonts:
    japanese: str
    mono: str


def _first_file(candidates: Iterable[str]) -> str | None:
    return next((path for path in candidates if path and Path(path).is_file()), None)


@lru_cache(maxsize=1)
def fonts() -> Fonts:
    """Register the embedded fonts once per process (raises :class:`SheetFontMissing`)."""
    japanese = _first_file((os.environ.get("IDP_SHEET_FONT", ""), *JAPANESE_FONTS))
    if japanese is None:
        raise SheetFontMissing(
            "no Japanese TrueType font for the first-password sheets: install "
            "fonts-ipaexfont-gothic (Debian/Ubuntu) or set IDP_SHEET_FONT to a .ttf file")
    pdfmetrics.registerFont(TTFont(JAPANESE, japanese))
    mono = _first_file(MONO_FONTS)
    if mono is None:
        return Fonts(JAPANESE, JAPANESE)
    pdfmetrics.registerFont(TTFont(MONO, mono))
    return Fonts(JAPANESE, MONO)


def sign_in_url(issuer: str) -> str:
    return issuer.rstrip("/") + SIGN_IN_PATH


def is_teacher(entry: dict[str, str]) -> bool:
    return entry.get("role") == "teacher"


def class_key(entry: dict[str, str]) -> tuple[str, bool, str, str]:
    return (entry.get("school_code", ""), is_teacher(entry), entry.get("grade", ""),
            entry.get("class_name", ""))


def class_text(entry: dict[str, str]) -> str:
    """「5年 2組」, 「先生」 for a teacher (whatever grade a roster gave them)."""
    if is_teacher(entry):
        return "先生"
    # The slips are always Japanese: the teacher hands them to the class.
    return school_class.class_words(entry.get("grade"), entry.get("class_name"), "ja")


def class_label(entry: dict[str, str]) -> str:
    return " ".join(p for p in (entry.get("school_name", ""), class_text(entry)) if p)


def kana_of(entry: dict[str, str]) -> str:
    return " ".join(p for p in (entry.get("kana_family_name", ""),
                                entry.get("kana_given_name", "")) if p)


def first_password_pdf(entries: Iterable[dict[str, str]], *, issuer: str) -> bytes:
    """A PDF: per class (teachers on their own pages), ten slips a page."""
    font = fonts()
    buffer = io.BytesIO()
    # initialFontName: else reportlab names Helvetica on every page, a font not embedded.
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1,
                        initialFontName=font.japanese, initialFontSize=10)
    pdf.setTitle("はじめてのパスワード")
    # A viewer's document properties say who made it (reportlab's default: "anonymous").
    pdf.setAuthor("マイナゲート")
    pdf.setCreator("マイナゲート")
    url = sign_in_url(issuer)
    ordered = sorted(entries, key=lambda e: (*class_key(e), e.get("login_id", "")))
    pages = 0
    for _, group in groupby(ordered, key=class_key):
        members = list(group)
        for start in range(0, len(members), COLUMNS * ROWS):
            if pages:
                pdf.showPage()
            pages += 1
            _page(pdf, font, members[start:start + COLUMNS * ROWS], url)
    if not pages:
        pdf.setFont(font.japanese, 14)
        pdf.drawString(MARGIN, A4[1] - MARGIN - 6 * mm, "新しいアカウントはありません。")
    pdf.save()
    return buffer.getvalue()


def _page(pdf, font: Fonts, members: list[dict[str, str]], url: str) -> None:
    width, height = A4
    # Title and note on lines of their own, each shrunk to the page's width: a long school
    # name can never run into the note.
    draw_fitted(pdf, font.japanese, f"{class_label(members[0])}  はじめてのパスワード", 14,
            MARGIN, height - MARGIN - 6 * mm, width - 2 * MARGIN)
    draw_fitted(pdf, font.japanese, TEACHER_NOTE, 9, MARGIN, height - MARGIN - 12 * mm,
            width - 2 * MARGIN)
    slip_w = (width - 2 * MARGIN) / COLUMNS
    slip_h = (height - 2 * MARGIN - HEADER) / ROWS
    _cut_lines(pdf, MARGIN, MARGIN, slip_w, slip_h)
    qr = _qr_matrix(url)
    for index, entry in enumerate(members):
        col, row = index % COLUMNS, index // COLUMNS
        x = MARGIN + col * slip_w
        y = height - MARGIN - HEADER - (row + 1) * slip_h
        _slip(pdf, font, entry, x, y, slip_w, slip_h, url, qr)


def _cut_lines(pdf, left: float, bottom: float, slip_w: float, slip_h: float) -> None:
    """The dashed grid the teacher cuts along (drawn once, so no line is doubled)."""
    pdf.saveState()
    pdf.setDash(4, 3)
    pdf.setLineWidth(0.5)
    pdf.setStrokeGray(0.45)
    for col in range(COLUMNS + 1):
        x = left + col * slip_w
        pdf.line(x, bottom, x, bottom + ROWS * slip_h)
    for row in range(ROWS + 1):
        y = bottom + row * slip_h
        pdf.line(left, y, left + COLUMNS * slip_w, y)
    pdf.restoreState()


def _slip(pdf, font: Fonts, entry: dict[str, str], x: float, y: float, w: float, h: float,
          url: str, qr: list[list[bool]]) -> None:
    left, top = x + PAD, y + h - PAD
    text_w = w - 2 * PAD - QR_SIZE - 3 * mm  # beside the QR code
    full_w = w - 2 * PAD
    school_line = " ".join(p for p in (entry.get("school_name", ""), class_text(entry)) if p)
    draw_fitted(pdf, font.japanese, school_line, 8, left, top - 3 * mm, text_w)
    kana = kana_of(entry)
    if kana:
        draw_fitted(pdf, font.japanese, kana, 7.5, left, top - 8 * mm, text_w)
    draw_fitted(pdf, font.japanese, f"{entry.get('display_name', '')} さん", 13, left,
            top - 14 * mm, text_w)
    pdf.setFont(font.japanese, 7)
    pdf.drawString(left, top - 18.5 * mm, "ID")
    draw_fitted(pdf, font.mono, entry.get("login_id", ""), 12, left + 8 * mm, top - 19 * mm,
            text_w - 8 * mm)
    pdf.setFont(font.japanese, 7)
    pdf.drawString(left, top - 23.5 * mm, "はじめてのパスワード")
    draw_fitted(pdf, font.mono, entry.get("password", ""), 13, left, top - 29 * mm, text_w)
    _draw_qr(pdf, qr, x + w - PAD - QR_SIZE, top - QR_SIZE - 1 * mm, QR_SIZE)
    pdf.setFont(font.japanese, 7)
    pdf.drawString(left, top - 33 * mm, "サインインするところ（QRコードでも ひらけます）")
    draw_fitted(pdf, font.mono, url, 11, left, top - 38 * mm, full_w, min_size=3, cut=False)
    draw_fitted(pdf, font.japanese, CHANGE_AT_FIRST_SIGN_IN, 7.5, left, y + 5 * mm, full_w)
    draw_fitted(pdf, font.japanese, KEEP_IT_SECRET, 7, left, y + 1.8 * mm, full_w)


def draw_fitted(pdf, font: str, text: str, size: float, x: float, y: float,
            max_width: float, min_size: float = 5.5, cut: bool = True) -> None:
    """Draw ``text`` no wider than ``max_width``: smaller type first, then (``cut``) cut
    with「…」. An address is never cut (half an address is no address): only shrunk."""
    width = pdfmetrics.stringWidth(text, font, size)
    if width > max_width:
        size = max(min_size, size * max_width / width * 0.99)  # 0.99: rounding
        while cut and len(text) > 1 and pdfmetrics.stringWidth(text, font, size) > max_width:
            text = text[:-2] + "…"
    pdf.setFont(font, size)
    pdf.drawString(x, y, text)


def _qr_matrix(url: str) -> list[list[bool]]:
    return [[bool(cell) for cell in row] for row in segno.make(url, error="m", micro=False)
            .matrix]


def _draw_qr(pdf, matrix: list[list[bool]], x: float, y: float, size: float) -> None:
    """Vector modules (sharp on any printer), one rectangle per run of dark modules."""
    module = size / (len(matrix) + 8)  # a quiet zone of 4 modules each side
    pdf.saveState()
    pdf.setFillGray(0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x + (start + 4) * module, y + size - (r + 5) * module,
                     (c - start) * module, module, stroke=0, fill=1)
    pdf.restoreState()
