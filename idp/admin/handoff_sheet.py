"""The vendor's hand-off sheet as a PDF: the same facts as the hand-off page (issuer,
discovery URL, client id, the secret while it may still be shown, redirect URIs, scopes).

It uses the first-password slips' fonts (:func:`idp.admin.sheets.fonts`: one home for the
embedded Japanese font), so it prints the same on any printer. No Flask here: the view
decides whether the secret may be printed and passes it in.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas

from idp.admin.sheets import MARGIN, Fonts, draw_fitted, fonts

SECRET_NOTE = ("シークレットはこの用紙にだけ印刷されています。安全な方法で渡し、"
               "渡したあとはこの用紙を処分してください。")
SECRET_GONE = ("シークレットはもう表示できません。わからなくなったときは、アプリの設定で"
               "作り直してください。")
VALUE_SIZE = 10
LINE = 5.5 * mm


@dataclass(frozen=True)
class HandoffFacts:
    app_name: str
    issuer: str
    discovery_url: str
    client_id: str
    auth_method: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    scopes: list[str]
    id_token_alg: str
    uses_secret: bool
    secret: str | None  # only while the one-time rule still allows showing it


class _Page:
    """A cursor down A4 pages: a new page when the next line would reach the margin."""

    def __init__(self, pdf: canvas.Canvas, font: Fonts) -> None:
        self.pdf, self.font = pdf, font
        self.width = A4[0] - 2 * MARGIN
        self.y = A4[1] - MARGIN - 6 * mm

    def _room(self, needed: float) -> None:
        if self.y - needed < MARGIN:
            self.pdf.showPage()
            self.y = A4[1] - MARGIN - 6 * mm

    def text(self, text: str, size: float = 9, gap: float = LINE) -> None:
        self._room(gap)
        draw_fitted(self.pdf, self.font.japanese, text, size, MARGIN, self.y, self.width)
        self.y -= gap

    def value(self, value: str) -> None:
        """A value to type or copy, in the monospaced font, wrapped (never cut or shrunk
        past reading): an address or a secret must come out whole. Its continued lines are
        indented further, so a long address never looks like two."""
        for index, line in enumerate(_wrap(value, self.font.mono, VALUE_SIZE,
                                           self.width - 8 * mm)):
            self._room(LINE)
            self.pdf.setFont(self.font.mono, VALUE_SIZE)
            self.pdf.drawString(MARGIN + (8 if index else 4) * mm, self.y, line)
            self.y -= LINE

    def field(self, label: str, values: list[str]) -> None:
        self._room(2 * LINE)
        self.text(label, 8, 4.5 * mm)
        for value in values or ["-"]:
            self.value(value)
        self.y -= 2 * mm


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    lines, current = [], ""
    for char in text:
        if current and pdfmetrics.stringWidth(current + char, font, size) > width:
            lines.append(current)
            current = ""
        current += char
    return [*lines, current] if current or not lines else lines


def handoff_pdf(facts: HandoffFacts) -> bytes:
    """One A4 sheet (more if there are many redirect URIs) for the app's vendor."""
    font = fonts()
    buffer = io.BytesIO()
    # initialFontName: else reportlab names Helvetica, a font not embedded.
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1,
                        initialFontName=font.japanese, initialFontSize=10)
    pdf.setTitle(f"アプリの会社に渡す情報: {facts.app_name}")
    # A viewer's document properties say who made it (reportlab's default: "anonymous").
    pdf.setAuthor("マイナゲート")
    pdf.setCreator("マイナゲート")
    page = _Page(pdf, font)
    page.text(f"アプリの会社に渡す情報: {facts.app_name}", 14, 8 * mm)
    page.text("アプリの設定画面にこのまま入れれば、マイナゲートでサインインできるように"
              "なります。", 9, 8 * mm)
    page.field("発行者(issuer)", [facts.issuer])
    page.field("設定の自動取得URL(discovery)", [facts.discovery_url])
    page.field("client_id", [facts.client_id])
    if facts.uses_secret:
        if facts.secret:
            page.field("client_secret", [facts.secret])
            page.text(SECRET_NOTE, 8)
        else:
            page.field("client_secret", [])
            page.text(SECRET_GONE, 8)
        page.y -= 2 * mm
    page.field("クライアント認証方式", [facts.auth_method])
    page.field("リダイレクトURI", facts.redirect_uris)
    if facts.post_logout_redirect_uris:
        page.field("ログアウト後のURI", facts.post_logout_redirect_uris)
    page.field("スコープ", [" ".join(facts.scopes)])
    page.field("IDトークンの署名", [facts.id_token_alg])
    pdf.save()
    return buffer.getvalue()
