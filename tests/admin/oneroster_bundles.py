"""OneRoster 1.2 CSV bundles (Japan Profile) for the tests: a school information system's
export, built file by file so a test can break exactly one thing."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field

USERS_HEADER = ("sourcedId", "status", "dateLastModified", "enabledUser", "username",
                "userIds", "givenName", "familyName", "middleName", "identifier", "email",
                "sms", "phone", "agentSourcedIds", "grades", "password",
                "userMasterIdentifier", "preferredGivenName", "preferredMiddleName",
                "preferredFamilyName", "primaryOrgSourcedId", "pronouns",
                "metadata.jp.kanaGivenName", "metadata.jp.kanaFamilyName",
                "metadata.jp.kanaMiddleName", "metadata.jp.homeClass")
ORGS_HEADER = ("sourcedId", "status", "dateLastModified", "name", "type", "identifier",
               "parentSourcedId")
ROLES_HEADER = ("sourcedId", "status", "dateLastModified", "userSourcedId", "roleType",
                "role", "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId")
CLASSES_HEADER = ("sourcedId", "status", "dateLastModified", "title", "grades",
                  "courseSourcedId", "classCode", "classType", "location", "schoolSourcedId",
                  "termSourcedIds", "subjects", "subjectCodes", "periods")
ENROLLMENTS_HEADER = ("sourcedId", "status", "dateLastModified", "classSourcedId",
                      "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate",
                      "endDate", "metadata.jp.ShussekiNo", "metadata.jp.PublicFlg")
SESSIONS_HEADER = ("sourcedId", "status", "dateLastModified", "title", "type", "startDate",
                   "endDate", "parentSourcedId", "schoolYear")


@dataclass
class Person:
    sourced_id: str
    username: str
    family: str
    given: str
    kana_family: str = ""
    kana_given: str = ""
    role: str = "student"
    grade: str = "P5"
    homeroom: str = "hr-5-1"  # a class sourcedId, "" for none
    number: str = ""  # 出席番号
    status: str = ""
    org: str = ""  # "" → the bundle's school org
    extra: dict[str, str] = field(default_factory=dict)


def csv_bytes(header, rows, bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


def manifest_bytes(mode: str = "bulk", version: str = "1.2", **files: str) -> bytes:
    modes = {"orgs": mode, "users": mode, "roles": mode, "classes": mode,
             "enrollments": mode, "academicSessions": mode, **files}
    rows = [("manifest.version", "1.0"), ("oneroster.version", version)]
    rows += [(f"file.{name}", value) for name, value in modes.items()]
    rows += [("source.systemName", "テスト校務支援")]
    return csv_bytes(("propertyName", "value"), rows)


def bundle_files(school_code: str, people: list[Person], *, mode: str = "bulk",
                 bom: bool = False, org_id: str = "org-1") -> dict[str, bytes]:
    """The files of a bundle for one school, as a school information system writes them."""
    when = "2026-03-01T09:00:00Z" if mode == "delta" else ""
    status = "active" if mode == "delta" else ""
    users, roles, enrollments = [], [], []
    for p in people:
        values = {"sourcedId": p.sourced_id, "status": p.status or status,
                  "dateLastModified": when, "enabledUser": "true", "username": p.username,
                  "givenName": p.given, "familyName": p.family, "grades": p.grade,
                  "primaryOrgSourcedId": p.org or org_id,
                  "metadata.jp.kanaGivenName": p.kana_given,
                  "metadata.jp.kanaFamilyName": p.kana_family,
                  "metadata.jp.homeClass": p.homeroom, **p.extra}
        users.append([values.get(c, "") for c in USERS_HEADER])
        roles.append([f"role-{p.sourced_id}", status, when, p.sourced_id, "primary", p.role,
                      "", "", p.org or org_id, ""])
        if p.homeroom:
            enrollments.append([f"enr-{p.sourced_id}", status, when, p.homeroom,
                                p.org or org_id, p.sourced_id, p.role,
                                "false" if p.role == "student" else "true", "", "",
                                p.number, "true"])
    classes = [[f"hr-5-{n}", status, when, f"{n}組", "P5", "course-hr", f"5-{n}", "homeroom",
                "", org_id, "ay-2026", "", "", ""] for n in (1, 2)]
    return {
        "manifest.csv": manifest_bytes(mode),
        "orgs.csv": csv_bytes(ORGS_HEADER, [
            ["board-1", status, when, "テスト市教育委員会", "district", "", ""],
            [org_id, status, when, "テスト小学校", "school", school_code, "board-1"]], bom),
        "academicSessions.csv": csv_bytes(SESSIONS_HEADER, [
            ["ay-2026", status, when, "2026年度", "schoolYear", "2026-04-01", "2027-03-31",
             "", "2026"]], bom),
        "classes.csv": csv_bytes(CLASSES_HEADER, classes, bom),
        "users.csv": csv_bytes(USERS_HEADER, users, bom),
        "roles.csv": csv_bytes(ROLES_HEADER, roles, bom),
        "enrollments.csv": csv_bytes(ENROLLMENTS_HEADER, enrollments, bom),
    }


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def bundle(school_code: str, people: list[Person], **options) -> bytes:
    return zip_bytes(bundle_files(school_code, people, **options))


def class_of_five(prefix: str = "") -> list[Person]:
    return [
        Person(f"{prefix}u-1", f"{prefix}haruto", "佐藤", "陽翔", "サトウ", "ハルト", number="1"),
        Person(f"{prefix}u-2", f"{prefix}yui", "鈴木", "結衣", "スズキ", "ユイ", number="2"),
        Person(f"{prefix}u-3", f"{prefix}sota", "髙橋", "蒼太", "タカハシ", "ソウタ",
               homeroom="hr-5-2", number="1"),
        Person(f"{prefix}t-1", f"{prefix}sensei", "田中", "先生", "タナカ", "センセイ",
               role="teacher", grade="", number=""),
        Person(f"{prefix}g-1", f"{prefix}mama", "佐藤", "母", "サトウ", "ハハ", role="guardian",
               grade="", homeroom="", extra={"agentSourcedIds": f"{prefix}u-1"}),
    ]
