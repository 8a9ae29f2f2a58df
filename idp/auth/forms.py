"""Forms (Flask-WTF: CSRF on every one). Labels are translated at render time."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    school = SelectField(_l("学校"), validators=[DataRequired()], validate_choice=True)
    login_id = StringField(_l("ID"), validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none",
                                      "spellcheck": "false"})
    password = PasswordField(_l("パスワード"), validators=[DataRequired(), Length(max=128)],
                             render_kw={"autocomplete": "current-password"})
    txn = HiddenField()
    card = HiddenField()  # the id of the card tapped in this sign-in, to be linked
    submit = SubmitField(_l("サインイン"))


class LoginTotpForm(FlaskForm):
    """A guardian's second step, after the right password (when they turned TOTP on)."""

    code = StringField(_l("<ruby>確認<rt>かくにん</rt></ruby>コード（6けた）"),
                       validators=[DataRequired(), Length(max=16)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField(_l("サインイン"))


class ConsentForm(FlaskForm):
    txn = HiddenField(validators=[DataRequired()])
    allow = SubmitField(_l("いいよ（<ruby>許可<rt>きょか</rt></ruby>する）"))
    deny = SubmitField(_l("やめる"))
    ask = SubmitField(_l("おうちの人にたのむ"))  # a child under the school's age (guardians)


class LogoutForm(FlaskForm):
    confirm = SubmitField(_l("サインアウトする"))


class LinkCardForm(FlaskForm):
    """The confirmation page of the card-linking ceremony."""

    txn = HiddenField()
    card = HiddenField(validators=[DataRequired()])
    link = SubmitField(_l("つなぐ"))
    skip = SubmitField(_l("つながない"))
