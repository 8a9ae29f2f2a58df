"""School roster files: decode, parse, check and plan an import. Pure: no Flask, no SQL.

A roster is a CSV as Excel exports it (UTF-8 with or without BOM, or CP932 = Shift_JIS with
Microsoft's extensions) with the columns school code, login id, display name, grade, class,
role — English or Japanese headers. :func:`plan_import` compares it with what the database
holds and says, row by row, what would be created, changed, left alone or refused, so an
admin sees the whole effect before anything is written; a file with any error is never
applied.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 5000
FIELDS = ("school_code", "login_id", "display_name", "grade", "class_name", "role")
REQUIRED = ("school_code", "login_id", "display_name", "role")

# Header spellings (compared after NFKC, trimming and lower-casing).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "school_code": ("school code", "school_code", "schoolcode", "school", "学校コード", "学校番号"),
    "login_id": ("login id", "login_id", "loginid", "login", "id", "ログインid", "ユーザーid"),
    "display_name": ("display name", "display_name", "name", "氏名", "名前", "なまえ"),
    "grade": ("grade", "year", "学年"),
    "class_name": ("class", "class_name", "classname", "組", "クラス", "学級"),
    "role": ("role", "役割", "区分", "種別"),
}
ROLE_ALIASES: dict[str, str] = {
    "student": "student", "pupil": "student", "児童": "student", "生徒": "student",
    "teacher": "teacher", "staff": "teacher", "教員": "teacher", "先生": "teacher",
    "教師": "teacher", "教職員": "teacher",
    # A guardian account (linked to children by a OneRoster bundle's agentSourcedIds or
    # by hand): never a pupil, never staff.
    "guardian": "guardian", "parent": "guardian", "保護者": "guardian",
}
LOGIN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class RosterFileError(ValueError):
    """The file as a whole cannot be read (encoding, header, size); ``code`` names why.

    ``detail`` is what a page shows after its sentence for ``code``: in the file's own words
    (the missing columns named in the language of the file's header)."""

    def __init__(self, code: str, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail = message if detail is None else detail


#: The columns by the names a template CSV uses (Japanese) and English headers use.
JAPANESE_COLUMNS = {"school_code": "学校コード", "login_id": "ログインID",
                    "display_name": "氏名", "grade": "学年", "class_name": "組",
                    "role": "役割"}
ENGLISH_COLUMNS = {"school_code": "school code", "login_id": "login id",
                   "display_name": "display name", "grade": "grade", "class_name": "class",
                   "role": "role"}
#: Where a OneRoster bundle keeps what the plan's checks name (users.csv, roles.csv).
ONEROSTER_COLUMNS = {"school_code": "orgSourcedIds", "login_id": "username",
                     "display_name": "givenName", "role": "role"}


@dataclass(frozen=True)
class RosterRow:
    line: int
    school_code: str
    login_id: str
    display_name: str
    grade: str
    class_name: str
    role: str
    # From a OneRoster bundle (idp.admin.oneroster); a plain CSV leaves them empty.
    sourced_id: str = ""
    kana_family_name: str = ""
    kana_given_name: str = ""
    student_number: str = ""
    birth_date: str = ""  # YYYY-MM-DD from demographics.csv, only for the guardian-consent age
    # Fields the file does not carry (a delta without roles.csv, say): left as they are.
    keep: frozenset[str] = frozenset()
    # A delta's ``tobedeleted``, or ``enabledUser`` false: deactivate (never delete).
    remove: bool = False
    # agentSourcedIds: a student's guardians, or a guardian's children (sourcedIds).
    agents: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowError:
    line: int
    code: str  # machine-readable: missing_field, bad_login_id, duplicate, unknown_school, ...
    field: str | None = None
    detail: str = ""
    file: str = ""  # which file of a OneRoster bundle; "" for a plain CSV


@dataclass
class ParsedRoster:
    rows: list[RosterRow]
    errors: list[RowError]
    encoding: str
    mode: str = "csv"  # csv | bulk | delta (a OneRoster bundle's users.csv)
    skipped: list[RowError] = field(default_factory=list)  # rows left out on purpose
    agents_given: bool = False  # users.csv has an agentSourcedIds column
    # Our field name -> the file's own column header, as written in it (a CSV's).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExistingAccount:
    id: str
    school_id: str
    login_id: str
    display_name: str
    grade: str
    class_name: str
    role: str
    active: bool
    sourced_id: str = ""
    kana_family_name: str = ""
    kana_given_name: str = ""
    student_number: str = ""
    birth_date: str = ""


@dataclass
class RosterPlan:
    creates: list[RosterRow] = field(default_factory=list)
    updates: list[tuple[RosterRow, ExistingAccount, list[str]]] = field(default_factory=list)
    unchanged: list[RosterRow] = field(default_factory=list)
    deactivations: list[ExistingAccount] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: list[RowError] = field(default_factory=list)
    # Guardian links to make and to end (idp.admin.roster_agents.PlannedLink).
    links: list[Any] = field(default_factory=list)
    unlinks: list[Any] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # as in ParsedRoster
    encoding: str = ""

    @property
    def valid(self) -> bool:
        return not self.errors

    def column(self, name: str | None) -> str:
        """A field as the file names it: its own header text, else the name given."""
        return self.headers.get(name or "", name or "")

    @property
    def changes(self) -> int:
        return len(self.creates) + len(self.updates) + len(self.deactivations) \
            + len(self.links) + len(self.unlinks)

    def summary(self) -> dict[str, int]:
        return {"create": len(self.creates), "update": len(self.updates),
                "unchanged": len(self.unchanged), "deactivate": len(self.deactivations),
                "errors": len(self.errors)}


# ----------------------------------------------------------------------------- decoding
def decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding it was in: UTF-8 (BOM optional) first, then CP932."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise RosterFileError("bad_encoding", f"not valid UTF-8 after the BOM: {exc}") \
                from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "cp932"
    except UnicodeDecodeError as exc:
        raise RosterFileError("bad_encoding",
                              "the file is neither UTF-8 nor Shift_JIS (CP932)") from exc


def normalized(value: str | None) -> str:
    """A cell as typed in any IME: full-width letters and digits folded, spaces trimmed."""
    return unicodedata.normalize("NFKC", value or "").strip()


def header_map(header: list[str], required: tuple[str, ...] = REQUIRED) -> dict[str, int]:
    """Our field name -> the column it is in, from the file's header (any known alias);
    a missing required column is named as the file would name it."""
    lookup = {alias: name for name, aliases in HEADER_ALIASES.items() for alias in aliases}
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = lookup.get(normalized(raw).lower())
        if name is not None and name not in columns:
            columns[name] = index
    missing = [name for name in required if name not in columns]
    if missing:
        # Named as the file would name them: a header in Japanese gets 「学校コード」.
        words = JAPANESE_COLUMNS if any(not cell.isascii() for cell in header) \
            else ENGLISH_COLUMNS
        named = ", ".join(words[name] for name in missing)
        raise RosterFileError("missing_columns", "the header lacks column(s): "
                              + ", ".join(missing) + f" ({named})", named)
    return columns


def parse(data: bytes) -> ParsedRoster:
    """Decode and check each row on its own; cross-row duplicates are errors too."""
    text, encoding = decode(data)
    if "\x00" in text:
        raise RosterFileError("bad_encoding", "the file contains NUL bytes: not a CSV")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise RosterFileError("empty", "the file is empty")
        columns = header_map(header)
        rows: list[RosterRow] = []
        errors: list[RowError] = []
        seen: dict[tuple[str, str], int] = {}
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) + len(errors) >= MAX_ROWS:
                raise RosterFileError("too_many_rows", f"at most {MAX_ROWS} rows per file")
            row, row_errors = check_row(line, cells, columns)
            if row is not None:
                key = (row.school_code, row.login_id.lower())
                if key in seen:
                    row_errors.append(RowError(line, "duplicate", "login_id",
                                               f"same login id as line {seen[key]}"))
                else:
                    seen[key] = line
            if row_errors:
                errors.extend(row_errors)
            elif row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise RosterFileError("bad_csv", f"line {reader.line_num}: {exc}") from exc
    if not rows and not errors:
        raise RosterFileError("empty", "the file has a header but no rows")
    headers = {name: header[index].strip() for name, index in columns.items()}
    return ParsedRoster(rows, errors, encoding, headers=headers)


# The pages add 年 and 組 themselves: a stored 「5年」 read 「5年年」 and was never promoted
# (not a number), a stored 「1組」 read 「1組組」. Other words (「年長」, 「ひまわり学級」) are
# kept as written.
NUMBERED_GRADE_RE = re.compile(r"^[0-9]{1,2}年生?$")
SHORT_CLASS_RE = re.compile(r"^[0-9A-Za-z]{1,4}組$")


def school_grade(raw: str) -> str:
    """「5年」「5年生」→「5」 (promoted like 5); anything else as written."""
    grade = normalized(raw)
    return grade.rstrip("年生") if NUMBERED_GRADE_RE.match(grade) else grade


def school_class(raw: str) -> str:
    """「1組」→「1」, as the CSV template writes it; anything else as written."""
    klass = normalized(raw)
    return klass[:-1] if SHORT_CLASS_RE.match(klass) else klass


def check_row(line: int, cells: list[str], columns: Mapping[str, int]
               ) -> tuple[RosterRow | None, list[RowError]]:
    def cell(name: str) -> str:
        index = columns.get(name)
        return cells[index] if index is not None and index < len(cells) else ""

    errors: list[RowError] = []
    school_code = normalized(cell("school_code"))
    login_id = normalized(cell("login_id"))
    display_name = cell("display_name").strip()
    grade, class_name = school_grade(cell("grade")), school_class(cell("class_name"))
    raw_role = normalized(cell("role")).lower()
    for name, value in (("school_code", school_code), ("login_id", login_id),
                        ("display_name", display_name), ("role", raw_role)):
        if not value:
            errors.append(RowError(line, "missing_field", name))
    if school_code and len(school_code) > 64:
        errors.append(RowError(line, "too_long", "school_code"))
    if login_id and not LOGIN_ID_RE.match(login_id):
        errors.append(RowError(line, "bad_login_id", "login_id", login_id[:70]))
    if len(display_name) > 200:
        errors.append(RowError(line, "too_long", "display_name"))
    if len(grade) > 16:  # any words are kept (「年長」): the promotion leaves those as they are
        errors.append(RowError(line, "too_long", "grade"))
    if len(class_name) > 32:
        errors.append(RowError(line, "too_long", "class_name"))
    role = ROLE_ALIASES.get(raw_role)
    if raw_role and role is None:
        code = "admin_role" if raw_role in ("school_admin", "platform_admin") else "bad_role"
        errors.append(RowError(line, code, "role", raw_role[:40]))
    if errors:
        return None, errors
    return RosterRow(line, school_code, login_id, display_name, grade, class_name,
                     role or "student"), []


# ----------------------------------------------------------------------------- planning
# The fields an import writes, as (row attribute, account attribute) — the same names.
GUARDIAN = "guardian"
ROSTER_ROLES = ("student", "teacher", GUARDIAN)  # the roles a roster may create and change
UPDATABLE = ("login_id", "display_name", "grade", "class_name", "role", "sourced_id",
             "kana_family_name", "kana_given_name", "student_number", "birth_date")


def plan_import(parsed: ParsedRoster, *, school_ids: Mapping[str, str],
                allowed_school_ids: set[str] | None,
                existing: Iterable[ExistingAccount],
                deactivate_missing: bool) -> RosterPlan:
    """What importing ``parsed`` would do.

    ``school_ids`` maps school code → id for every known school; ``allowed_school_ids`` is
    None for a platform admin, else the schools this admin may touch; ``existing`` holds the
    accounts of the schools named in the file (and those a delta removes by sourcedId). A
    row with a sourcedId finds its account by it first (so a login id may change), then by
    login id. With ``deactivate_missing`` every active student of a school in the file who
    is not in the file is deactivated (never deleted).
    """
    plan = RosterPlan(errors=list(parsed.errors), skipped=list(parsed.skipped),
                      headers=parsed.headers or (ONEROSTER_COLUMNS if parsed.mode != "csv"
                                                 else {}),
                      encoding=parsed.encoding)
    accounts = list(existing)
    index = _Index(accounts)
    matched: set[str] = set()
    schools_in_file: set[str] = set()
    for row in parsed.rows:
        if row.remove:
            _plan_removal(plan, row, index, allowed_school_ids, matched)
            continue
        school_id = school_ids.get(row.school_code)
        if school_id is None:
            plan.errors.append(RowError(row.line, "unknown_school", "school_code",
                                        row.school_code, _file_of(row)))
            continue
        if allowed_school_ids is not None and school_id not in allowed_school_ids:
            plan.errors.append(RowError(row.line, "other_school", "school_code",
                                        row.school_code, _file_of(row)))
            continue
        schools_in_file.add(school_id)
        current, error = index.find(school_id, row)
        if error is not None:
            plan.errors.append(error)
            continue
        if current is None:
            if "role" in row.keep:
                plan.errors.append(RowError(row.line, "missing_field", "role", "",
                                            _file_of(row)))
            else:
                plan.creates.append(row)
            continue
        matched.add(current.id)
        if current.role not in ROSTER_ROLES:
            plan.errors.append(RowError(row.line, "admin_account", "login_id", row.login_id,
                                        _file_of(row)))
            continue
        if "role" not in row.keep and (row.role == GUARDIAN) != (current.role == GUARDIAN):
            # A parent's account never becomes a pupil or a teacher (nor the other way):
            # whoever holds its password would gain a pupil's or staff's reach.
            plan.errors.append(RowError(row.line, "role_change_refused", "role", row.role,
                                        _file_of(row)))
            continue
        changed = _changes(row, current)
        if changed:
            plan.updates.append((row, current, changed))
        else:
            plan.unchanged.append(row)
    plan.errors.sort(key=lambda e: (e.file, e.line))
    if deactivate_missing:
        plan.deactivations.extend(
            a for a in sorted(accounts, key=lambda a: (a.school_id, a.login_id.lower()))
            if a.school_id in schools_in_file and a.id not in matched
            and a.role == "student" and a.active)
    return plan


def _file_of(row: RosterRow) -> str:
    return "users.csv" if row.sourced_id else ""


class _Index:
    """The existing accounts by (school, login id) and by (school, sourcedId)."""

    def __init__(self, accounts: list[ExistingAccount]) -> None:
        self.by_login = {(a.school_id, a.login_id.lower()): a for a in accounts}
        self.by_sourced = {(a.school_id, a.sourced_id): a for a in accounts if a.sourced_id}
        self.sourced_anywhere: dict[str, list[ExistingAccount]] = {}
        for account in accounts:
            if account.sourced_id:
                self.sourced_anywhere.setdefault(account.sourced_id, []).append(account)

    def find(self, school_id: str, row: RosterRow
             ) -> tuple[ExistingAccount | None, RowError | None]:
        by_login = self.by_login.get((school_id, row.login_id.lower()))
        if not row.sourced_id:
            return by_login, None
        by_sourced = self.by_sourced.get((school_id, row.sourced_id))
        if by_sourced is not None:
            if by_login is not None and by_login.id != by_sourced.id:
                # The new login id belongs to someone else in this school.
                return None, RowError(row.line, "duplicate", "login_id", row.login_id,
                                      "users.csv")
            return by_sourced, None
        if by_login is not None and by_login.sourced_id \
                and by_login.sourced_id != row.sourced_id:
            return None, RowError(row.line, "sourced_id_conflict", "username", row.login_id,
                                  "users.csv")
        return by_login, None


def _plan_removal(plan: RosterPlan, row: RosterRow, index: _Index,
                  allowed_school_ids: set[str] | None, matched: set[str]) -> None:
    candidates = index.sourced_anywhere.get(row.sourced_id, [])
    if allowed_school_ids is not None:
        candidates = [a for a in candidates if a.school_id in allowed_school_ids]
    if not candidates:
        # Not here (or already gone): a delta replayed twice must not fail.
        plan.skipped.append(RowError(row.line, "unknown_user", "sourcedId", row.sourced_id,
                                     "users.csv"))
        return
    for account in candidates:
        matched.add(account.id)
        if account.role not in ROSTER_ROLES:
            plan.errors.append(RowError(row.line, "admin_account", "sourcedId",
                                        row.sourced_id, "users.csv"))
        elif account.active:
            plan.deactivations.append(account)
        else:
            plan.unchanged.append(row)


# A plain CSV row is found by its login id and carries none of these: they stay as a
# OneRoster import left them.
ONEROSTER_ONLY = frozenset({"login_id", "sourced_id", "kana_family_name", "kana_given_name",
                            "student_number", "birth_date"})


def _changes(row: RosterRow, current: ExistingAccount) -> list[str]:
    keep = row.keep if row.sourced_id else row.keep | ONEROSTER_ONLY
    changed = [name for name in UPDATABLE if name not in keep
               and getattr(row, name) != getattr(current, name)]
    if not current.active:
        changed.append("active")
    return changed


# ----------------------------------------------------------------------------- preview
@dataclass(frozen=True)
class PreviewRow:
    """One account as the import will leave it, and what changes for it (before, after)."""

    line: int  # 0 for an account the file does not list (deactivated as missing)
    fate: str  # create | update | unchanged | deactivate
    school_code: str
    login_id: str
    display_name: str
    kana: str
    grade: str
    class_name: str
    role: str
    changes: tuple[tuple[str, str, str], ...] = ()  # (field, before, after)


def _kana(family: str, given: str) -> str:
    return " ".join(part for part in (family, given) if part)


def _row_view(row: RosterRow, fate: str, changes: tuple = ()) -> PreviewRow:
    return PreviewRow(row.line, fate, row.school_code, row.login_id, row.display_name,
                      _kana(row.kana_family_name, row.kana_given_name), row.grade,
                      row.class_name, row.role, changes)


def preview_rows(plan: RosterPlan, school_codes: Mapping[str, str]) -> list[PreviewRow]:
    """Every row of the plan in file order (school id -> code in ``school_codes``), then
    the accounts it deactivates."""
    rows = [_row_view(r, "create") for r in plan.creates]
    rows += [_row_view(r, "unchanged") for r in plan.unchanged if not r.remove]
    for row, current, changed in plan.updates:
        changes = tuple(
            ("active", "inactive", "active") if name == "active"
            else (name, str(getattr(current, name)), str(getattr(row, name)))
            for name in changed)
        rows.append(_row_view(row, "update", changes))
    rows.sort(key=lambda r: r.line)
    rows += [PreviewRow(0, "deactivate", school_codes.get(a.school_id, ""), a.login_id,
                        a.display_name, _kana(a.kana_family_name, a.kana_given_name),
                        a.grade, a.class_name, a.role, (("active", "active", "inactive"),))
             for a in plan.deactivations]
    return rows
