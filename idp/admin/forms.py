"""Admin forms (Flask-WTF: CSRF on every one). Labels are Japanese msgids."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from idp.clients.auth_methods import AUTH_METHODS
from idp.clients.registry import ID_TOKEN_ALGS
from idp.scopes import SUPPORTED_SCOPES
from idp.signin.context import ACR_LEVELS


class AdminLoginForm(FlaskForm):
    school = StringField(_l("学校コード"), validators=[DataRequired(), Length(max=64)])
    login_id = StringField(_l("ID"), validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username"})
    password = PasswordField(_l("パスワード"), validators=[DataRequired(), Length(max=128)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()
    submit = SubmitField(_l("サインイン"))


class TotpForm(FlaskForm):
    code = StringField(_l("確認コード(6けた)"), validators=[DataRequired(), Length(max=10)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField(_l("確認する"))


class EnrolCodeForm(FlaskForm):
    enrolment_code = StringField(_l("登録コード(XXXX-XXXX-XXXX)"),
                                 validators=[DataRequired(), Length(max=32)],
                                 render_kw={"autocomplete": "off", "autocapitalize": "characters"})
    submit = SubmitField(_l("登録をはじめる"))


class UnlinkCardsForm(FlaskForm):
    """After a password reset: which of the account's linked cards to unlink (revoke)."""

    card_ids = SelectMultipleField(_l("つながっているカード"), choices=[],
                                   widget=ListWidget(prefix_label=False),
                                   option_widget=CheckboxInput(),
                                   validators=[DataRequired()])
    submit = SubmitField(_l("選んだカードのつながりを解除する"))


class ActionForm(FlaskForm):
    """A bare button: the CSRF token is the whole form."""

    submit = SubmitField(_l("実行"))


class ClientForm(FlaskForm):
    """An app (relying party). Each field says in plain words what it is for; the defaults
    are what most school apps need (a confidential web app: a secret sent with HTTP Basic,
    and the student's name and school)."""

    client_name = StringField(
        _l("アプリの名前"), validators=[DataRequired(), Length(max=200)],
        description=_l("児童生徒が「このアプリにサインインします」の画面で見る名前です。"))
    redirect_uris = TextAreaField(
        _l("リダイレクトURI(1行に1つ)"), validators=[DataRequired(), Length(max=5000)],
        description=_l("サインインのあとに戻るアプリのURLです。アプリの会社から聞いて、"
                       "そのまま貼りつけてください(https:// で始まります)。"))
    post_logout_redirect_uris = TextAreaField(
        _l("ログアウト後のURI(1行に1つ)"), validators=[Optional(), Length(max=5000)],
        description=_l("サインアウトのあとに戻るURLです。わからなければ空のままで大丈夫です。"))
    sector_identifier_uri = StringField(
        _l("セクター識別子URI"), validators=[Optional(), Length(max=500)],
        description=_l("ふつうは空のままにします。同じ会社のいくつかのアプリで同じ利用者IDを"
                       "使うときだけ、会社に聞いて入れます。"))
    token_endpoint_auth_method = SelectField(
        _l("クライアント認証方式"), choices=list(AUTH_METHODS), default="client_secret_basic",
        description=_l("アプリがこのサービスに自分を証明する方法です。ふつうは "
                       "client_secret_basic のままにします。"))
    scopes = SelectMultipleField(
        _l("許可するスコープ"), choices=list(SUPPORTED_SCOPES),
        default=["openid", "profile", "school"],
        description=_l("アプリに渡す情報です。openid は必ず選びます。profile は名前、school は"
                       "学校・学年・組です。アプリに必要なものだけ選んでください。"
                       "いくつも選ぶときは、Ctrl キー(Mac は ⌘ キー)を押したままクリックします。"))
    jwks_uri = StringField(
        _l("jwks_uri"), validators=[Optional(), Length(max=500)],
        description=_l("private_key_jwt のときだけ使います。アプリの公開鍵のURLです。"))
    jwks = TextAreaField(
        _l("jwks(JSON)"), validators=[Optional(), Length(max=20000)],
        description=_l("private_key_jwt で、公開鍵のURLがないときだけ、鍵そのものを貼ります。"))
    id_token_signed_response_alg = SelectField(
        _l("IDトークンの署名アルゴリズム"), choices=list(ID_TOKEN_ALGS),
        description=_l("ふつうは RS256 のままにします。"))
    required_acr = SelectField(
        _l("必要な認証レベル(acr)"),
        choices=[SelectChoice("", "-"), *map(SelectChoice, sorted(ACR_LEVELS))],
        description=_l("マイナンバーカードでのサインインを必ず求めるアプリだけ、カードの"
                       "レベルを選びます。ふつうは「-」のままです。"))
    logo_uri = StringField(
        _l("ロゴのURL(https)"), validators=[Optional(), Length(max=500)],
        description=_l("許可の画面に出すアプリのロゴです。なくてもかまいません。"))
    contacts = StringField(
        _l("連絡先(カンマ区切り)"), validators=[Optional(), Length(max=1000)],
        description=_l("アプリの会社の担当者のメールアドレスです。"))
    access_token_lifetime = IntegerField(
        _l("アクセストークンの有効秒数"), validators=[Optional(), NumberRange(60, 86400)],
        description=_l("空のままなら標準の長さになります。"))
    refresh_token_lifetime = IntegerField(
        _l("リフレッシュトークンの有効秒数"),
        validators=[Optional(), NumberRange(300, 7776000)],
        description=_l("空のままなら標準の長さになります。"))
    allow_graduates = BooleanField(_l("卒業生も使える(卒業後の期間だけ)"))
    submit = SubmitField(_l("保存する"))


class IatForm(FlaskForm):
    label = StringField(_l("メモ"), validators=[Optional(), Length(max=200)])
    days = IntegerField(_l("有効日数"), default=7, validators=[NumberRange(1, 90)])
    max_uses = IntegerField(_l("使える回数"), default=1, validators=[NumberRange(1, 1000)])
    allowed_scopes = SelectMultipleField(
        _l("登録で許すスコープ"), choices=list(SUPPORTED_SCOPES), default=SUPPORTED_SCOPES,
        description=_l("いくつも選ぶときは、Ctrl キー(Mac は ⌘ キー)を押したままクリックします。"))
    submit = SubmitField(_l("発行する"))


class SchoolForm(FlaskForm):
    code = StringField(_l("学校コード"), validators=[DataRequired(), Length(max=64)])
    name = StringField(_l("学校名"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("作成する"))


class AccountForm(FlaskForm):
    school = SelectField(_l("学校"), validators=[DataRequired()])
    login_id = StringField(_l("ID"), validators=[DataRequired(), Length(max=64)])
    display_name = StringField(_l("氏名"), validators=[Optional(), Length(max=200)])
    role = SelectField(_l("役割"))
    grade = StringField(_l("学年"), validators=[Optional(), Length(max=16)])
    class_name = StringField(_l("組"), validators=[Optional(), Length(max=32)])
    submit = SubmitField(_l("作成する"))


class RosterUploadForm(FlaskForm):
    file = FileField(_l("名簿ファイル(CSV または OneRoster の zip)"),
                     validators=[FileRequired()])
    deactivate_missing = BooleanField(
        _l("ファイルにない児童生徒を無効にする(学校全体の名簿のときだけ)"))
    submit = SubmitField(_l("確認する(まだ保存しません)"))


class RosterExportForm(FlaskForm):
    client_id = SelectField(_l("アプリ"), validators=[DataRequired()], choices=[],
                            validate_choice=False)
    school_code = StringField(_l("学校コード(全体の管理者のとき)"),
                              validators=[Optional(), Length(max=64)])
    submit = SubmitField(_l("OneRoster形式で書き出す"))


class RosterApplyForm(FlaskForm):
    preview_id = HiddenField(validators=[DataRequired()])
    submit = SubmitField(_l("この内容で取り込む"))


class PromotionUploadForm(FlaskForm):
    school = SelectField(_l("学校"), validators=[DataRequired()])
    file = FileField(_l("新しいクラスの名簿(CSV、なくてもよい)"))
    submit = SubmitField(_l("確認する(まだ保存しません)"))


class PromotionApplyForm(FlaskForm):
    preview_token = HiddenField(validators=[DataRequired(), Length(max=64)])
    school = HiddenField(validators=[DataRequired(), Length(max=64)])
    submit = SubmitField(_l("この内容で進級・卒業させる"))


class YearSettingsForm(FlaskForm):
    school = HiddenField(validators=[DataRequired(), Length(max=64)])
    top_grade = IntegerField(_l("卒業する学年"), validators=[NumberRange(1, 12)])
    grace_days = IntegerField(_l("卒業生がアプリを使える日数"), validators=[NumberRange(0, 730)])
    submit = SubmitField(_l("保存する"))


class RetentionForm(FlaskForm):
    days = IntegerField(_l("監査ログの保存日数"), validators=[NumberRange(30, 3650)])
    submit = SubmitField(_l("保存する"))


class ApiTokenForm(FlaskForm):
    label = StringField(_l("メモ"), validators=[Optional(), Length(max=200)])
    days = IntegerField(_l("有効日数"), default=30, validators=[NumberRange(1, 90)])
    submit = SubmitField(_l("発行する"))


class TransferForm(FlaskForm):
    """The sending school's offer (a platform admin: the move itself)."""

    school_code = StringField(_l("うつる先の学校コード"),
                              validators=[DataRequired(), Length(max=64)])
    login_id = StringField(_l("うつった先のID(空なら今のまま)"),
                           validators=[Optional(), Length(max=64)])
    submit = SubmitField(_l("ほかの学校にうつす"))


class AcceptTransferForm(FlaskForm):
    login_id = StringField(_l("この学校でのID(空なら申し出のまま)"),
                           validators=[Optional(), Length(max=64)])
    submit = SubmitField(_l("受け入れる"))
