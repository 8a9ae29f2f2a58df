"""Typed outcomes of talking to the card, each with a short message a child can act on.

`code` is the stable string the local HTTP API and the provider's pages use; the messages
are shown by the bridge itself (PIN window, terminal), in English and Japanese.
"""

from __future__ import annotations


class CardError(Exception):
    code = "card_failure"
    message_en = "Something went wrong with the card. Take it out, put it back and try again."
    message_ja = "カードの読み取りに失敗しました。カードを置き直して、もう一度ためしてね。"
    http_status = 502

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(detail or self.message_en)

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.code,
            "error_description": self.message_en,
            "error_description_ja": self.message_ja,
        }


class WrongPin(CardError):
    code = "wrong_pin"
    http_status = 401

    def __init__(self, tries_left: int) -> None:
        self.tries_left = tries_left
        self.message_en = (
            f"That PIN was not right. You can try {tries_left} more "
            f"time{'s' if tries_left != 1 else ''}."
        )
        self.message_ja = f"暗証番号がちがいます。あと{tries_left}回ためせます。"
        if tries_left == 1:
            self.message_en += " If the next one is wrong too, the card locks."
            self.message_ja += "次もまちがえるとカードがロックされます。"
        super().__init__(self.message_en)

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "tries_left": self.tries_left}


class PinBlocked(CardError):
    code = "pin_blocked"
    http_status = 423
    message_en = "Your card's PIN is locked. Please go to your city office to reset it."
    message_ja = "暗証番号がロックされています。市役所・区役所でPINの再設定をしてもらってね。"

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "tries_left": 0}


class LastTryNotConfirmed(CardError):
    """Policy refusal: one try is left and the person did not confirm spending it."""

    code = "last_try_unconfirmed"
    http_status = 409
    message_en = (
        "Only one PIN try is left. If you are not sure of your PIN, ask an adult or go to "
        "your city office before trying."
    )
    message_ja = (
        "暗証番号はあと1回しかためせません。自信がないときは、大人に相談するか"
        "市役所・区役所に行ってね。"
    )

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "tries_left": 1}


class InvalidPinFormat(CardError, ValueError):
    code = "invalid_pin"
    http_status = 400
    message_en = "The PIN is 4 numbers."
    message_ja = "暗証番号は数字4けたです。"


class NotVerified(CardError):
    code = "not_verified"
    http_status = 401
    message_en = "The card needs your PIN first."
    message_ja = "先に暗証番号を入れてね。"


class NotMyNumberCard(CardError):
    code = "not_mynumber_card"
    http_status = 422
    message_en = "This card is not a My Number card. Please use your My Number card."
    message_ja = (
        "このカードはマイナンバーカードではありません。マイナンバーカードを置いてね。"
    )


class NoReader(CardError):
    code = "no_reader"
    http_status = 503
    message_en = "No card reader was found. Plug in the card reader and try again."
    message_ja = (
        "カードリーダーが見つかりません。カードリーダーをつないでから、もう一度ためしてね。"
    )


class NoCard(CardError):
    code = "no_card"
    http_status = 503
    message_en = "No card on the reader. Put your My Number card on the reader."
    message_ja = "カードがありません。マイナンバーカードをカードリーダーに置いてね。"


class CardRemoved(CardError):
    code = "card_removed"
    http_status = 503
    message_en = "The card was taken off the reader. Leave it on until you are signed in."
    message_ja = "カードがはなれました。サインインが終わるまでカードを置いたままにしてね。"


class ReaderBusy(CardError):
    code = "reader_busy"
    http_status = 409
    message_en = "The card reader is busy. Close other card apps, wait a moment and try again."
    message_ja = (
        "カードリーダーが使用中です。ほかのアプリを閉じて、少し待ってからためしてね。"
    )


class Cancelled(CardError):
    code = "cancelled"
    http_status = 400
    message_en = "Sign-in was cancelled."
    message_ja = "サインインを取り消しました。"


class ApduNotAllowed(CardError):
    """Raised before the bytes reach the reader: a bug, never something a user can cause."""

    code = "card_failure"
    http_status = 500


class CardFailure(CardError):
    code = "card_failure"

    def __init__(self, sw: int | None = None, detail: str | None = None) -> None:
        self.sw = sw
        super().__init__(detail or (f"card answered {sw:04X}" if sw is not None else None))


ERROR_CODES: tuple[str, ...] = (
    "wrong_pin",
    "pin_blocked",
    "not_verified",
    "not_mynumber_card",
    "no_reader",
    "no_card",
    "card_removed",
    "reader_busy",
    "cancelled",
    "card_failure",
    "last_try_unconfirmed",
    "invalid_pin",
)
