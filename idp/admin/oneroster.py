"""OneRoster 1.2 CSV bundles (with the Japan Profile's extensions) read into a roster.
Pure: no Flask, no SQL.

A bundle is a zip of CSV files described by ``manifest.csv``. :func:`parse_bundle` opens it
defensively (a zip bomb, names with folders or ``..``, encrypted or oversized members, a
missing or wrong manifest are file errors), reads ``orgs``, ``users``, ``roles``,
``classes``, ``enrollments`` and the birth date of ``demographics`` (and checks
``academicSessions`` and the rest of ``demographics`` for what must never come in), and
turns each person into a :class:`idp.admin.roster.RosterRow`, so the bundle goes through the
same plan → import → first-password sheets path as a CSV.

Never imported: a My Number (個人番号). A column named like one, a ``userIds`` entry of that
type, or any 12-digit value whose check digit is a valid My Number's refuses the whole
bundle, naming the file, line and column but never echoing the value.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field, replace
from datetime import date

from idp.admin.roster import ParsedRoster, RosterFileError, RosterRow, RowError, check_row
from idp.japan_time import japan_today

MAX_BUNDLE_BYTES = 8 * 1024 * 1024  # the zip as uploaded
MAX_MEMBER_BYTES = 16 * 1024 * 1024  # one CSV, uncompressed
MAX_TOTAL_BYTES = 48 * 1024 * 1024  # all CSVs read, uncompressed
MAX_MEMBERS = 40  # OneRoster 1.2 names 23 files
MAX_TABLE_ROWS = 50_000  # enrollments may be several per pupil
MAX_USERS = 5000  # the same cap as a CSV roster (idp.admin.roster.MAX_ROWS)
MAX_SOURCED_ID = 255

MANIFEST_VERSION = "1.0"
# 1.2, its errata 1.2.1 / 1.2.2, and the Japan K-12 profile's "1.2_JP".
ONEROSTER_VERSION_RE = re.compile(r"^1\.2(\.\d+)?(_JP)?$")
MODES = ("bulk", "delta", "absent")
# orgs.csv says which school each person is in, so a delta carries it too; a delta may
# leave roles.csv out when no role changed (then the role stays as it is).
REQUIRED_FILES = ("orgs", "users")
READ_FILES = ("orgs", "users", "roles", "classes", "enrollments", "academicSessions",
              "demographics")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "manifest": ("propertyName", "value"),
    "orgs": ("sourcedId", "status", "name", "type"),
    "users": ("sourcedId", "status", "enabledUser", "username", "givenName", "familyName"),
    "roles": ("sourcedId", "status", "userSourcedId", "roleType", "role", "orgSourcedId"),
    "classes": ("sourcedId", "status", "title", "classType", "schoolSourcedId"),
    "enrollments": ("sourcedId", "status", "classSourcedId", "schoolSourcedId",
                    "userSourcedId", "role"),
    "academicSessions": ("sourcedId", "status", "title", "type", "startDate", "endDate"),
    "demographics": ("sourcedId", "status"),
}
# A guardian, parent or relative becomes a guardian account (never a pupil or staff), linked
# to children by agentSourcedIds (idp.admin.roster_agents).
MAPPED_ROLES = {"student": "student", "teacher": "teacher", "guardian": "guardian",
                "parent": "guardian", "relative": "guardian"}
# Other staff roles carry admin powers this import must not hand out.
SKIPPED_ROLES = frozenset({"aide", "counselor", "principal", "proctor",
                           "districtAdministrator", "siteAdministrator",
                           "systemAdministrator", "administrator"})
KANA_RE = re.compile(r"^[\u3041-\u309f\u30a0-\u30ff\u3000 ]*$")
STUDENT_NUMBER_RE = re.compile(r"^[0-9]{1,16}$")
MY_NUMBER_HEADER_WORDS = ("mynumber", "個人番号", "マイナンバー", "kojinbango",
                          "individualnumber")


@dataclass
class Table:
    name: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line, column → value)


@dataclass
class Bundle:
    manifest: dict[str, str]
    tables: dict[str, Table] = field(default_factory=dict)

    def mode(self, name: str) -> str:
        return self.manifest.get(f"file.{name}", "absent")


# ----------------------------------------------------------------------------- the zip
def looks_like_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def read_bundle(data: bytes) -> Bundle:
    """The manifest and the tables this import reads, or :class:`RosterFileError`."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise RosterFileError("too_large", f"a bundle may be at most {MAX_BUNDLE_BYTES} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise RosterFileError("bad_zip", "not a readable zip file") from exc
    if len(members) > MAX_MEMBERS:
        raise RosterFileError("bad_zip", f"at most {MAX_MEMBERS} files in a bundle")
    by_name: dict[str, zipfile.ZipInfo] = {}
    for info in members:
        name = info.filename
        if name.startswith("__MACOSX/") and ".." not in name:
            continue  # the Finder's resource forks: never opened
        if "/" in name or "\\" in name or ".." in name or ":" in name or "\x00" in name \
                or not name:
            raise RosterFileError("unsafe_path", "put the CSV files at the top of the zip, "
                                  "not in a folder (found a name with a path)")
        if info.flag_bits & 0x1:
            raise RosterFileError("bad_zip", "encrypted zip files are not accepted")
        if name in by_name:
            raise RosterFileError("bad_zip", f"{name} is in the zip twice")
        by_name[name] = info
    budget = [MAX_TOTAL_BYTES]
    if "manifest.csv" not in by_name:
        raise RosterFileError("missing_manifest", "the bundle has no manifest.csv")
    manifest = _read_manifest(_read_member(archive, by_name["manifest.csv"], budget))
    bundle = Bundle(manifest)
    for name in READ_FILES:
        mode = bundle.mode(name)
        member = by_name.get(f"{name}.csv")
        if mode == "absent":
            if name in REQUIRED_FILES or (name == "roles" and bundle.mode("users") == "bulk"):
                raise RosterFileError("missing_file", f"the manifest must list {name}.csv "
                                      "as bulk or delta")
            continue
        if member is None:
            raise RosterFileError("missing_file", f"the manifest lists {name}.csv, but it "
                                  "is not in the zip")
        bundle.tables[name] = _read_table(name, _read_member(archive, member, budget))
    if bundle.mode("users") == "bulk" and bundle.mode("roles") != "bulk":
        raise RosterFileError("bad_manifest", "with a bulk users.csv, roles.csv must be "
                              "bulk too")
    return bundle


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> str:
    """One member, read with a hard cap whatever its header claims (a zip bomb stops at
    the cap, not at the end of the disk)."""
    cap = min(MAX_MEMBER_BYTES, budget[0])
    try:
        with archive.open(info) as stream:
            raw = stream.read(cap + 1)
    except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError) as exc:
        raise RosterFileError("bad_zip", f"{info.filename} cannot be unpacked") from exc
    if len(raw) > cap:
        raise RosterFileError("too_large", f"{info.filename} unpacks to more than the "
                              f"{cap} bytes this import reads")
    budget[0] -= len(raw)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RosterFileError("bad_encoding", f"{info.filename} is not UTF-8 (OneRoster "
                              "files are UTF-8, with or without BOM)") from exc
    if "\x00" in text:
        raise RosterFileError("bad_encoding", f"{info.filename} contains NUL bytes")
    return text


def _csv_rows(name: str, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise RosterFileError("empty", f"{name}.csv is empty")
        rows: list[tuple[int, list[str]]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_TABLE_ROWS:
                raise RosterFileError("too_many_rows", f"{name}.csv has more than "
                                      f"{MAX_TABLE_ROWS} rows")
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise RosterFileError("bad_csv", f"{name}.csv line {reader.line_num}: {exc}") \
            from exc
    return [cell.strip() for cell in header], rows


def _read_manifest(text: str) -> dict[str, str]:
    header, rows = _csv_rows("manifest", text)
    _check_header("manifest", header)
    manifest = {cells[0].strip(): (cells[1].strip() if len(cells) > 1 else "")
                for _, cells in rows if cells}
    if manifest.get("manifest.version") != MANIFEST_VERSION:
        raise RosterFileError("bad_manifest_version", "manifest.version must be "
                              f"{MANIFEST_VERSION}")
    if not ONEROSTER_VERSION_RE.match(manifest.get("oneroster.version", "")):
        raise RosterFileError("bad_manifest_version", "oneroster.version must be 1.2 "
                              "(this import reads OneRoster 1.2 CSV)")
    for key, value in manifest.items():
        if key.startswith("file.") and value not in MODES:
            raise RosterFileError("bad_manifest", f"{key} must be bulk, delta or absent")
    return manifest


def _check_header(name: str, header: list[str]) -> None:
    for column in header:
        squashed = unicodedata.normalize("NFKC", column).lower().replace("_", "") \
            .replace(".", "").replace(" ", "")
        if any(word in squashed for word in MY_NUMBER_HEADER_WORDS):
            raise RosterFileError("my_number", f"{name}.csv has a My Number column "
                                  f"({column[:40]}); remove it: it is never imported")
    if len(set(header)) != len(header):
        raise RosterFileError("bad_csv", f"{name}.csv names a column twice")
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in header]
    if missing:
        raise RosterFileError("missing_columns", f"{name}.csv lacks column(s): "
                              + ", ".join(missing))


def _read_table(name: str, text: str) -> Table:
    header, rows = _csv_rows(name, text)
    _check_header(name, header)
    if not rows:
        raise RosterFileError("empty", f"{name}.csv has a header but no rows")
    table = Table(name, header, [])
    for line, cells in rows:
        values = {column: (cells[i].strip() if i < len(cells) else "")
                  for i, column in enumerate(header)}
        for column, value in values.items():
            if looks_like_my_number(value):
                raise RosterFileError("my_number", f"{name}.csv line {line} column {column} "
                                      "holds what looks like a My Number; it is never "
                                      "imported (use a shorter student number)")
        table.rows.append((line, values))
    return table


def looks_like_my_number(value: str) -> bool:
    """Twelve digits (spaces or hyphens aside) whose last is the My Number check digit."""
    digits = re.sub(r"[\s\-‐－]", "", unicodedata.normalize("NFKC", value))
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return False
    body = [int(d) for d in digits[:11]]
    total = sum(p * (n + 1 if n <= 6 else n - 5)
                for n, p in enumerate(reversed(body), start=1))
    remainder = total % 11
    return int(digits[11]) == (0 if remainder <= 1 else 11 - remainder)


# ----------------------------------------------------------------------------- people
@dataclass
class _Context:
    bundle: Bundle
    delta: bool
    schools: dict[str, str]  # org sourcedId → school code
    errors: list[RowError]
    skipped: list[RowError]
    classes: dict[str, dict[str, str]] = field(default_factory=dict)
    enrollments: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    roles: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    birth_dates: dict[str, str] = field(default_factory=dict)


def parse_bundle(data: bytes) -> ParsedRoster:
    """The bundle as a roster: one row per person, errors with their file and line."""
    bundle = read_bundle(data)
    delta = bundle.mode("users") == "delta"
    context = _Context(bundle, delta, {}, [], [])
    _collect_orgs(context)
    _collect_links(context)
    if "demographics" in bundle.tables:
        _collect_birth_dates(context)
    rows: list[RosterRow] = []
    seen: dict[str, int] = {}
    users = bundle.tables["users"].rows
    if len(users) > MAX_USERS:
        raise RosterFileError("too_many_rows", f"at most {MAX_USERS} users per bundle")
    for line, user in users:
        sourced_id = user["sourcedId"]
        if not sourced_id or len(sourced_id) > MAX_SOURCED_ID:
            context.errors.append(RowError(line, "bad_sourced_id", "sourcedId", "", "users.csv"))
            continue
        if sourced_id in seen:
            context.errors.append(RowError(line, "duplicate", "sourcedId",
                                           f"line {seen[sourced_id]}", "users.csv"))
            continue
        seen[sourced_id] = line
        row = _person(context, line, user)
        if row is not None:
            rows.append(row)
    if not rows and not context.errors and not context.skipped:
        raise RosterFileError("empty", "users.csv names nobody this import can take")
    return ParsedRoster(rows, context.errors, "utf-8", "delta" if delta else "bulk",
                        context.skipped,
                        agents_given="agentSourcedIds" in bundle.tables["users"].header)


def _status_ok(context: _Context, file: str, line: int, status: str) -> bool:
    allowed = ("active", "tobedeleted") if context.delta else ("", "active")
    if status in allowed:
        return True
    context.errors.append(RowError(line, "bad_status", "status", status[:20], file))
    return False


def _collect_orgs(context: _Context) -> None:
    for line, org in context.bundle.tables["orgs"].rows:
        if not _status_ok(context, "orgs.csv", line, org["status"]):
            continue
        if org["type"] == "school" and org["status"] != "tobedeleted":
            # The school code Mynagate knows: the org's identifier (学校コード), else its id.
            context.schools[org["sourcedId"]] = org.get("identifier") or org["sourcedId"]


def _collect_links(context: _Context) -> None:
    tables = context.bundle.tables
    for line, role in tables["roles"].rows if "roles" in tables else []:
        if _status_ok(context, "roles.csv", line, role["status"]) \
                and role["status"] != "tobedeleted":
            context.roles.setdefault(role["userSourcedId"], []).append((line, role))
    for line, klass in tables["classes"].rows if "classes" in tables else []:
        if _status_ok(context, "classes.csv", line, klass["status"]):
            context.classes[klass["sourcedId"]] = klass
    for line, enrollment in tables["enrollments"].rows if "enrollments" in tables else []:
        if not _status_ok(context, "enrollments.csv", line, enrollment["status"]) \
                or enrollment["status"] == "tobedeleted":
            continue
        number = _attendance_number(enrollment)
        if number and not STUDENT_NUMBER_RE.match(number):
            context.errors.append(RowError(line, "bad_student_number", "metadata.jp.ShussekiNo",
                                           number[:20], "enrollments.csv"))
            continue
        context.enrollments.setdefault(enrollment["userSourcedId"], []).append(enrollment)


def _collect_birth_dates(context: _Context) -> None:
    """demographics.csv: only ``birthDate`` is kept (the guardian-consent age needs it);
    sex and every other demographic is dropped unread."""
    today = japan_today()
    for line, row in context.bundle.tables["demographics"].rows:
        if not _status_ok(context, "demographics.csv", line, row["status"]) \
                or row["status"] == "tobedeleted" or not row.get("birthDate"):
            continue
        born = _past_date(row["birthDate"], today)
        if born is None:
            context.errors.append(RowError(line, "bad_birth_date", "birthDate",
                                           row["birthDate"][:20], "demographics.csv"))
        else:
            context.birth_dates[row["sourcedId"]] = born.isoformat()


def _past_date(raw: str, today: date) -> date | None:
    """``YYYY-MM-DD`` from 1900 to today (the rule of idp.accounts.guardians), else None."""
    try:
        value = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None
    return value if value is not None and date(1900, 1, 1) <= value <= today else None


def _attendance_number(enrollment: dict[str, str]) -> str:
    """出席番号: ``metadata.jp.ShussekiNo`` (Japan Profile 1.2) or ``shussekiNo`` (K-12)."""
    raw = enrollment.get("metadata.jp.ShussekiNo") or enrollment.get("metadata.jp.shussekiNo")
    return unicodedata.normalize("NFKC", raw or "").strip()


def _primary_role(context: _Context, line: int, user: dict[str, str]
                  ) -> tuple[str, str, int] | None:
    """(OneRoster role, school code, roles.csv line) of the person's primary role."""
    roles = context.roles.get(user["sourcedId"], [])
    if not roles and context.delta and user.get("primaryOrgSourcedId") in context.schools:
        # A delta sends a role only when it changed: the role stays as it is.
        return "", context.schools[user["primaryOrgSourcedId"]], line
    if not roles:
        context.errors.append(RowError(line, "missing_role", "sourcedId", "", "users.csv"))
        return None
    primary = [lr for lr in roles if lr[1]["roleType"] == "primary"] or roles
    if len(primary) > 1:
        chosen = [lr for lr in primary
                  if lr[1]["orgSourcedId"] == user.get("primaryOrgSourcedId")]
        primary = chosen or primary
    role_line, role = primary[0]
    org = role["orgSourcedId"]
    if org not in context.schools:
        known = any(o["sourcedId"] == org for _, o in context.bundle.tables["orgs"].rows)
        context.errors.append(RowError(role_line, "not_a_school" if known else "unknown_org",
                                       "orgSourcedId", org[:70], "roles.csv"))
        return None
    return role["role"], context.schools[org], role_line


def _person(context: _Context, line: int, user: dict[str, str]) -> RosterRow | None:
    if not _status_ok(context, "users.csv", line, user["status"]):
        return None
    if user["status"] == "tobedeleted" or user["enabledUser"].lower() == "false":
        return RosterRow(line, "", user.get("username", ""), "", "", "", "student",
                         sourced_id=user["sourcedId"], remove=True)
    found = _primary_role(context, line, user)
    if found is None:
        return None
    oneroster_role, school_code, role_line = found
    role = MAPPED_ROLES.get(oneroster_role) or ("student" if not oneroster_role else None)
    if role is None:
        code = "role_skipped" if oneroster_role in SKIPPED_ROLES else "bad_role"
        target = context.skipped if code == "role_skipped" else context.errors
        target.append(RowError(role_line, code, "role", oneroster_role[:40], "roles.csv"))
        return None
    family = user.get("preferredFamilyName") or user["familyName"]
    given = user.get("preferredGivenName") or user["givenName"]
    display_name = f"{family} {given}".strip()
    grade = grade_number(user.get("grades") or "")
    class_name, student_number = _homeroom(context, user)
    if role == "guardian":  # an adult: no grade, class or attendance number
        grade, class_name, student_number = "", "", ""
    cells = [school_code, user["username"], display_name, grade, class_name, role]
    columns = {name: i for i, name in enumerate(
        ("school_code", "login_id", "display_name", "grade", "class_name", "role"))}
    row, errors = check_row(line, cells, columns)
    errors.extend(_japan_profile_errors(line, user))
    agents = agent_ids(user.get("agentSourcedIds", ""))
    if agents is None:
        errors.append(RowError(line, "bad_agent", "agentSourcedIds", "", "users.csv"))
    if errors or row is None:
        context.errors.extend(replace(e, file=e.file or "users.csv") for e in errors)
        return None
    keep = {"class_name", "student_number"} if context.bundle.mode("enrollments") == "absent" \
        and not user.get("metadata.jp.homeClass") else set()
    if not oneroster_role:
        keep.add("role")
    birth_date = context.birth_dates.get(user["sourcedId"], "") if role != "guardian" else ""
    if not birth_date:
        keep.add("birth_date")  # a file without it never wipes a date the school set
    return replace(row, sourced_id=user["sourcedId"],
                   kana_family_name=_kana(user.get("metadata.jp.kanaFamilyName", "")),
                   kana_given_name=_kana(user.get("metadata.jp.kanaGivenName", "")),
                   student_number=student_number, birth_date=birth_date,
                   agents=agents, keep=frozenset(keep))


MAX_AGENTS = 20


def agent_ids(raw: str) -> tuple[str, ...] | None:
    """``agentSourcedIds``: a comma-separated list of sourcedIds (a student's guardians, a
    guardian's children), in order, without repeats; None when it is too long to be one."""
    ids = tuple(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))
    if len(ids) > MAX_AGENTS or any(len(a) > MAX_SOURCED_ID for a in ids):
        return None
    return ids


# MEXT grade codes of the Japan Profile: 小学校 P1–P6, 中学校 J1–J3, 高等学校 H1–H3.
MEXT_GRADE_RE = re.compile(r"^(?:P[1-6]|J[1-3]|H[1-3])$")


def grade_number(grades: str) -> str:
    """The first of ``grades``, a MEXT code as its number ("P5" → "5"): the grade is a
    number in the school, as in the CSV roster, so the year-end promotion moves it up."""
    first = unicodedata.normalize("NFKC", grades.split(",")[0]).strip()
    return first[1:] if MEXT_GRADE_RE.match(first) else first


def _homeroom(context: _Context, user: dict[str, str]) -> tuple[str, str]:
    """The homeroom class's title and the attendance number in it (Japan Profile:
    ``metadata.jp.homeClass`` names the class; else an enrollment in a homeroom class)."""
    enrollments = context.enrollments.get(user["sourcedId"], [])
    home_id = user.get("metadata.jp.homeClass", "")
    if not home_id:
        home_id = next((e["classSourcedId"] for e in enrollments
                        if context.classes.get(e["classSourcedId"], {}).get("classType")
                        == "homeroom"), "")
    klass = context.classes.get(home_id)
    if klass is None:
        return "", ""
    number = next((_attendance_number(e) for e in enrollments
                   if e["classSourcedId"] == home_id), "")
    return unicodedata.normalize("NFKC", klass["title"]).strip(), number


def _kana(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def _japan_profile_errors(line: int, user: dict[str, str]) -> list[RowError]:
    errors = []
    for column in ("metadata.jp.kanaFamilyName", "metadata.jp.kanaGivenName"):
        value = _kana(user.get(column, ""))
        if len(value) > 100:
            errors.append(RowError(line, "too_long", column, "", "users.csv"))
        elif not KANA_RE.match(value):
            errors.append(RowError(line, "bad_kana", column, value[:40], "users.csv"))
    for entry in re.findall(r"\{([^:}]*):", user.get("userIds", "")):
        squashed = unicodedata.normalize("NFKC", entry).lower().replace(" ", "")
        if any(word in squashed for word in MY_NUMBER_HEADER_WORDS):
            raise RosterFileError("my_number", f"users.csv line {line}: userIds carries a "
                                  "My Number; it is never imported")
    return errors
