"""Forms of the student's page (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class WithdrawForm(FlaskForm):
    submit = SubmitField(_l("このアプリにわたすのをやめる"))


class NewPasswordForm(FlaskForm):
    """A new password typed twice (the policy itself is idp.signin.passwords')."""

    new = PasswordField(_l("新しいパスワード（8文字以上）"),
                        validators=[DataRequired(), Length(max=128)],
                        render_kw={"autocomplete": "new-password"})
    repeat = PasswordField(_l("新しいパスワードをもう一度"),
                           validators=[DataRequired(), Length(max=128)],
                           render_kw={"autocomplete": "new-password"})


class PasswordForm(NewPasswordForm):
    current = PasswordField(_l("いまのパスワード"), validators=[DataRequired(), Length(max=128)],
                            render_kw={"autocomplete": "current-password"})
    submit = SubmitField(_l("パスワードをかえる"))


class CardPasswordForm(NewPasswordForm):
    """A new password proven by a fresh card sign-in: no current password asked."""

    submit = SubmitField(_l("パスワードを決める"))


class ResetForm(NewPasswordForm):
    school = SelectField(_l("学校"), validators=[DataRequired()], validate_choice=True)
    login_id = StringField(_l("ID"), validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none"})
    code = StringField(_l("先生からもらったコード"), validators=[DataRequired(), Length(max=40)],
                       render_kw={"autocomplete": "off", "autocapitalize": "characters"})
    submit = SubmitField(_l("パスワードを決める"))


class TotpStartForm(FlaskForm):
    current = PasswordField(_l("いまのパスワード"), validators=[DataRequired(), Length(max=128)],
                            render_kw={"autocomplete": "current-password"})
    submit = SubmitField(_l("<ruby>確認<rt>かくにん</rt></ruby>コードをつかいはじめる"))


class TotpConfirmForm(FlaskForm):
    code = StringField(_l("<ruby>確認<rt>かくにん</rt></ruby>コード（6けた）"),
                       validators=[DataRequired(), Length(max=16)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField(_l("たしかめて、オンにする"))


class TotpOffForm(FlaskForm):
    current = PasswordField(_l("いまのパスワード"), validators=[DataRequired(), Length(max=128)],
                            render_kw={"autocomplete": "current-password"})
    code = StringField(_l("<ruby>確認<rt>かくにん</rt></ruby>コード（6けた）"),
                       validators=[DataRequired(), Length(max=16)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField(_l("<ruby>確認<rt>かくにん</rt></ruby>コードをやめる"))
