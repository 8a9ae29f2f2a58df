"""A school's roster as a OneRoster 1.2 CSV bundle (Japan Profile) for one app.

An app the school uses can create its accounts before April from this bundle: every person
is named by that app's pairwise ``sub`` (``sourcedId``, ``username`` and ``userIds``), the
same ``sub`` the app will see at sign-in, and never by the account id, the login id or the
school's own sourcedId, which would let two apps join what they know about a pupil. The
bundle carries names and classes, so only an app allowed both the ``profile`` and the
``school`` scopes gets one, and every export is audited.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts import lifecycle
from idp.accounts.roles import Action, Actor, Forbidden, may
from idp.admin.accounts import AdminInputError, NotFound
from idp.audit import audit
from idp.oidc.claims import subject_for
from idp.store.models import Account, Client, School

JST = timezone(timedelta(hours=9), "JST")
NEEDED_SCOPES = ("profile", "school")
ID_TYPE = "Mynagate"  # the userIds type: {Mynagate:<sub>}

MANIFEST_FILES = ("academicSessions", "categories", "classes", "classResources", "courses",
                  "courseResources", "demographics", "enrollments",
                  "lineItemLearningObjectiveIds", "lineItems", "lineItemScoreScales", "orgs",
                  "resources", "resultLearningObjectiveIds", "results", "resultScoreScales",
                  "roles", "scoreScales", "userProfiles", "userResources", "users")
WRITTEN = {"academicSessions", "classes", "courses", "enrollments", "orgs", "roles", "users"}
HEADERS: dict[str, tuple[str, ...]] = {
    "orgs": ("sourcedId", "status", "dateLastModified", "name", "type", "identifier",
             "parentSourcedId"),
    "academicSessions": ("sourcedId", "status", "dateLastModified", "title", "type",
                         "startDate", "endDate", "parentSourcedId", "schoolYear"),
    "courses": ("sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title",
                "courseCode", "grades", "orgSourcedId", "subjects", "subjectCodes"),
    "classes": ("sourcedId", "status", "dateLastModified", "title", "grades",
                "courseSourcedId", "classCode", "classType", "location", "schoolSourcedId",
                "termSourcedIds", "subjects", "subjectCodes", "periods"),
    "users": ("sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds",
              "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
              "agentSourcedIds", "grades", "password", "userMasterIdentifier",
              "preferredGivenName", "preferredMiddleName", "preferredFamilyName",
              "primaryOrgSourcedId", "pronouns", "metadata.jp.kanaGivenName",
              "metadata.jp.kanaFamilyName", "metadata.jp.kanaMiddleName",
              "metadata.jp.homeClass"),
    "roles": ("sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role",
              "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId"),
    "enrollments": ("sourcedId", "status", "dateLastModified", "classSourcedId",
                    "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate",
                    "endDate", "metadata.jp.ShussekiNo", "metadata.jp.PublicFlg"),
}


@dataclass
class Export:
    data: bytes
    users: int
    filename: str


def school_year(now: datetime) -> int:
    """The Japanese school year (April to March) ``now`` falls in, in Japan time."""
    local = now.astimezone(JST)
    return local.year if local.month >= 4 else local.year - 1


def export_bundle(db: Session, actor: Actor, *, client_id: str, school_code: str | None,
                  pairwise_secret: str, now: datetime | None = None) -> Export:
    """The bundle for ``client_id`` of one school (a school admin's own; a platform admin
    names it). Raises Forbidden, NotFound or AdminInputError (with a code)."""
    client = db.get(Client, client_id) if client_id else None
    if client is None:
        raise NotFound("no such app (client_id)")
    school = _school(db, actor, school_code)
    if not client.enabled:
        raise AdminInputError("client_disabled", "this app is disabled")
    if not all(scope in (client.scopes or []) for scope in NEEDED_SCOPES):
        raise AdminInputError("scope_not_allowed", "the bundle carries names and classes: "
                              "the app must be allowed the profile and school scopes")
    # In school now: not graduates (they keep only the apps that allow graduates) and not
    # deactivated accounts.
    accounts = list(db.scalars(
        select(Account).where(Account.school_id == school.id, Account.active.is_(True),
                              Account.status == lifecycle.ACTIVE,
                              Account.role.in_(("student", "teacher")))
        .order_by(Account.grade, Account.class_name, Account.student_number,
                  Account.login_id)))
    year = school_year(now or datetime.now(UTC))
    people = [(subject_for(pairwise_secret, client, a.id), a) for a in accounts]
    data = _zip(_tables(school, year, people))
    audit(db, "roster.exported", actor=actor.account_id, school_id=school.id,
          client_id=client.client_id, users=len(people), format="oneroster")
    # A header value: only characters no browser or proxy reads differently.
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"oneroster-{school.code}-{client.client_id}")
    return Export(data, len(people), f"{safe}.zip")


def _school(db: Session, actor: Actor, school_code: str | None) -> School:
    if school_code:
        school = db.scalar(select(School).where(School.code == school_code))
        if school is None:
            raise NotFound("no such school")
    elif actor.is_platform_admin:
        raise AdminInputError("unknown_school", "name the school (school_code)")
    else:
        school = db.get(School, actor.school_id)
    if school is None or not may(actor, Action.ROSTER, school.id):
        raise Forbidden("not allowed to export this school's roster")
    return school


def _grade_code(school: School, grade: str) -> str:
    """A grade number as the Japan Profile's MEXT code where the school tells which: a
    six-grade school is an elementary school (P1–P6). A three-grade school may be a junior
    or a senior high school (J or H), which Mynagate does not record: the number stays."""
    if grade.isdigit() and school.top_grade == 6 and 1 <= int(grade) <= 6:
        return f"P{grade}"
    return grade


def _class_id(school: School, year: int, grade: str, class_name: str) -> str:
    digest = hashlib.sha256(f"{school.code}\x00{year}\x00{grade}\x00{class_name}".encode())
    return "class-" + digest.hexdigest()[:20]


def _tables(school: School, year: int, people: list[tuple[str, Account]]
            ) -> dict[str, list[dict[str, str]]]:
    code, session_id, course_id = school.code, f"{school.code}-{year}", f"{school.code}-hr"
    tables: dict[str, list[dict[str, str]]] = {
        "orgs": [{"sourcedId": code, "name": school.name, "type": "school",
                  "identifier": code}],
        "academicSessions": [{"sourcedId": session_id, "title": f"{year}年度",
                              "type": "schoolYear", "startDate": f"{year}-04-01",
                              "endDate": f"{year + 1}-03-31", "schoolYear": str(year)}],
        "courses": [{"sourcedId": course_id, "schoolYearSourcedId": session_id,
                     "title": "ホームルーム", "orgSourcedId": code}],
        "classes": [], "users": [], "roles": [], "enrollments": []}
    classes: dict[tuple[str, str], str] = {}
    for sub, account in people:
        class_id = ""
        if account.class_name:
            key = (account.grade or "", account.class_name)
            if key not in classes:
                classes[key] = _class_id(school, year, *key)
                tables["classes"].append({
                    "sourcedId": classes[key], "title": account.class_name,
                    "grades": _grade_code(school, key[0]), "courseSourcedId": course_id,
                    "classCode": account.class_name, "classType": "homeroom",
                    "schoolSourcedId": code, "termSourcedIds": session_id})
            class_id = classes[key]
        family, _, given = (account.display_name or "").partition(" ")
        tables["users"].append({
            "sourcedId": sub, "enabledUser": "true", "username": sub,
            "userIds": f"{{{ID_TYPE}:{sub}}}", "givenName": given.strip() or family,
            "familyName": family if given.strip() else "",
            "grades": _grade_code(school, account.grade or ""),
            "primaryOrgSourcedId": code,
            "metadata.jp.kanaGivenName": account.kana_given_name or "",
            "metadata.jp.kanaFamilyName": account.kana_family_name or "",
            "metadata.jp.homeClass": class_id})
        tables["roles"].append({"sourcedId": f"role-{sub}", "userSourcedId": sub,
                                "roleType": "primary", "role": account.role,
                                "orgSourcedId": code})
        if class_id:
            tables["enrollments"].append({
                "sourcedId": f"enr-{sub}", "classSourcedId": class_id,
                "schoolSourcedId": code, "userSourcedId": sub, "role": account.role,
                "primary": "false" if account.role == "student" else "true",
                "metadata.jp.ShussekiNo": account.student_number or ""})
    return tables


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _zip(tables: dict[str, list[dict[str, str]]]) -> bytes:
    manifest = [("manifest.version", "1.0"), ("oneroster.version", "1.2")]
    manifest += [(f"file.{name}", "bulk" if name in WRITTEN and tables.get(name) else
                  "absent") for name in MANIFEST_FILES]
    manifest += [("source.systemName", "Mynagate"), ("source.systemCode", "mynagate")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.csv", _csv_text(("propertyName", "value"), manifest))
        for name, header in HEADERS.items():
            if tables.get(name):
                archive.writestr(f"{name}.csv", _csv_text(
                    header, ([row.get(column, "") for column in header]
                             for row in tables[name])))
    return buffer.getvalue()
