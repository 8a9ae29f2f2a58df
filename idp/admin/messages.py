"""The admin pages' words for the machine-readable codes the admin services raise.

The services (and the JSON API) speak in codes with an English detail for developers; the
pages show the same failure in the reader's language, with the detail (a value from the
file or the form) after it when there is one.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

_MESSAGES = {
    # schools and accounts (idp.admin.accounts.AdminInputError)
    "invalid_school": _l("学校コード(1〜64文字)と学校名(1〜200文字)を入れてください。"),
    "school_exists": _l("この学校コードは、もう登録されています。"),
    "invalid_role": _l("この役割は選べません。"),
    "invalid_login_id": _l("ログインIDは英数字と . _ @ + - だけで、64文字までです。"),
    "too_long": _l("長すぎる項目があります。"),
    "unknown_school": _l("その学校コードの学校は登録されていません。"),
    "login_id_taken": _l("このログインIDは、この学校でもう使われています。"),
    "self_lock": _l("自分のアカウントはロックできません。"),
    "not_staff": _l("確認コードを登録するのは教職員のアカウントだけです。"),
    "not_slip_role": _l("用紙を印刷しなおせるのは、児童生徒と先生のアカウントだけです。"
                        "管理者には再設定コードを発行してください。"),
    "inactive": _l("無効になっているアカウントです。"),
    # transfers (idp.admin.transfers)
    "invalid_school_code": _l("うつる先の学校コードを入れてください(64文字まで)。"),
    "same_school": _l("このアカウントは、もうその学校にいます。"),
    "offer_expired": _l("この申し出は期限が切れました。"
                        "送り出す学校に、もう一度申し出てもらってください。"),
    "offer_not_pending": _l("この申し出は、もう受け入れたか、断ったか、取り消されています。"),
    "offer_stale": _l("このアカウントは、もう送り出す学校にいません。"),
    # relying parties (idp.clients.registry.ClientMetadataError, RFC 7591 codes)
    "invalid_redirect_uri": _l("リダイレクトURIが使えません(https か、ループバックの http だけ)。"),
    "invalid_client_metadata": _l("アプリの設定に問題があります。"),
    # credentials (admin.credentials.CredentialError, clients.access_tokens.AccessTokenError)
    "bad_days": _l("有効日数が範囲の外です。"),
    "bad_max_uses": _l("使える回数は1〜1000回です。"),
    "bad_scopes": _l("スコープは登録済みのものだけで、openid を含めてください。"),
    "not_admin": _l("管理者だけが管理APIトークンを持てます。"),
    # roster files (idp.admin.roster.RosterFileError) and rows (RowError)
    "bad_encoding": _l("文字コードが読めません(UTF-8 か Shift_JIS の CSV にしてください)。"),
    "missing_columns": _l("見出しの行に必要な列がありません。"),
    "empty": _l("ファイルに名簿の行がありません。"),
    "too_many_rows": _l("1つのファイルの行が多すぎます。分けてください。"),
    "bad_csv": _l("CSVとして読めません。"),
    "missing_field": _l("必要な項目が空です。"),
    "bad_login_id": _l("ログインIDに使えない文字があります(英数字と . _ @ + -、64文字まで)。"),
    "duplicate": _l("同じログインIDが、ファイルの中に2回あります。"),
    "other_school": _l("あなたが管理していない学校です。"),
    "admin_account": _l("管理者のアカウントは名簿では変えられません。"),
    "admin_role": _l("管理者の役割は名簿では付けられません。"),
    "bad_role": _l("役割は student か teacher(児童生徒・教員)にしてください。"),
    # the year-end promotion (idp.admin.school_year)
    "bad_row": _l("ログインID・学年・組のどれかが空か、長すぎます。"),
    "unknown_login": _l("このログインIDの在学中の児童生徒は、この学校にいません。"),
    "grade_mismatch": _l("名簿の学年が、進級したあとの学年(いまの学年 + 1)と合いません。"),
    "graduating": _l("最上級の学年なので卒業します。この行は使いません(名簿から消してください)。"),
    "not_a_number": _l("学年が数字ではないので、進級させません(そのままにします)。"),
    "already_applied": _l("この確認内容は、もう反映しました。"),
    "stale_preview": _l("確認のあとで児童生徒の情報が変わりました。もう一度確認してください。"),
    "preview_expired": _l("確認の時間が切れました。もう一度確認してください。"),
    "invalid_roster": _l("名簿にまちがいがあります。確認画面を見てください。"),
    # OneRoster bundles (idp.admin.oneroster) and their export (idp.admin.oneroster_export)
    "bad_zip": _l("zip ファイルとして開けません。"),
    "unsafe_path": _l(
        "zip の中にフォルダがあります。CSV ファイルを zip のいちばん上に入れてください。"),
    "too_large": _l("ファイルが大きすぎます。"),
    "missing_manifest": _l("zip に manifest.csv がありません。"),
    "bad_manifest_version": _l("OneRoster 1.2 の manifest.csv ではありません。"),
    "bad_manifest": _l("manifest.csv の内容がまちがっています。"),
    "missing_file": _l("manifest.csv に書かれたファイルが zip にありません。"),
    "my_number": _l("マイナンバー(個人番号)が入っています。マイナンバーは取り込みません。"
                    "その列を消してください。"),
    "bad_sourced_id": _l("sourcedId が空か、長すぎます。"),
    "bad_status": _l("status がまちがっています(差分のときだけ tobedeleted を使えます)。"),
    "missing_role": _l("この人の役割(roles.csv)がありません。"),
    "unknown_org": _l("roles.csv の組織が orgs.csv にありません。"),
    "not_a_school": _l("役割の組織が学校ではありません。"),
    "role_skipped": _l("この役割の人は取り込みません(保護者や管理職などは別に登録します)。"),
    "bad_kana": _l("かなの名前に、かな以外の文字があります。"),
    "bad_student_number": _l("出席番号は数字だけにしてください。"),
    "sourced_id_conflict": _l("このログインIDは、別の sourcedId の人がもう使っています。"),
    "unknown_user": _l("この sourcedId の人はいません(もう無効かもしれません)。"),
    "delta_deactivate": _l("差分のファイルでは「ファイルにない人を無効にする」は使えません。"),
    "bad_format": _l("ファイルの形式がまちがっています。"),
    "client_disabled": _l("このアプリは止められています。"),
    "scope_not_allowed": _l("このアプリには profile と school のスコープが必要です。"),
    "bad_birth_date": _l("生年月日は、今日までの日付を YYYY-MM-DD で書いてください。"),
}


def describe(code: str, detail: str = "") -> str:
    """The reader's-language sentence for ``code``, with ``detail`` after it when given."""
    message = _MESSAGES.get(code)
    text = str(message) if message is not None else code
    return f"{text} ({detail})" if detail else text
