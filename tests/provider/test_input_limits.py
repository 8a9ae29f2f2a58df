"""No input yields a 5xx (issue 8 point 4): a broken ``Authorization: Basic`` header is 401
invalid_client, a JSON body too large or too deep is a 400 naming the limit on every JSON
endpoint, a 405 keeps its ``Allow`` header, and /api/openapi.json states the bounds the code
enforces. Both backends: run with MYNAGATE_TEST_BACKEND=postgres too."""

# ruff: noqa: F811 - the shared admin fixtures are imported, then requested by name
from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.input_limits import JSON_MAX_BYTES, JSON_MAX_DEPTH, MalformedBasic, json_depth, parse_basic
from tests.admin.conftest import make_account, platform_admin, token_of  # noqa: F401
from tests.conftest import unique

FUZZ = settings(max_examples=80, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
CLIENT_AUTH_PATHS = ["/token", "/revoke", "/introspect"]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def nested(depth: int, leaf=1):
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.fixture(scope="module")
def admin_headers(svc):
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, School
    from tests.admin.conftest import api_token_for

    with svc.db.session() as s:
        school = School(code=unique("lim"), name="上限小学校")
        s.add(school)
        s.flush()
        admin = Account(school_id=school.id, login_id=unique("limadmin"),
                        role="platform_admin", password_hash=hash_password("limits limits"))
        s.add(admin)
    return {"Authorization": "Bearer " + api_token_for(svc, admin.id)}, school.code


@pytest.fixture(scope="module")
def iat_headers(app, admin_headers):
    response = app.test_client().post("/api/admin/initial-access-tokens", json={"max_uses": 1000},
                                      headers=admin_headers[0])
    assert response.status_code == 201, response.get_json()
    return {"Authorization": "Bearer " + response.get_json()["token"]}


# ----------------------------------------------------------------------------- Basic auth
BROKEN_BASIC = {
    "not UTF-8": "Basic " + _b64(b"\xff\xfe:\xff"),
    "not UTF-8 client id only": "Basic " + _b64(b"caf\xe9:secret"),
    "raw latin-1 bytes": "Basic \xff\xfe",
    "not base64": "Basic !!!notb64",
    "base64 without padding": "Basic YWJj",
    "no colon": "Basic " + _b64(b"justanid"),
    "empty": "Basic ",
    "scheme only": "Basic",
    "bad %-escape": "Basic " + _b64(b"id%FF:secret"),
}


@pytest.mark.parametrize("path", CLIENT_AUTH_PATHS)
@pytest.mark.parametrize("case", sorted(BROKEN_BASIC))
def test_a_broken_basic_header_is_invalid_client(client, path, case):
    response = client.post(path, data={"grant_type": "authorization_code", "code": "c",
                                       "token": "t"},
                           headers={"Authorization": BROKEN_BASIC[case]})
    assert response.status_code == 401, (case, response.get_data(as_text=True)[:200])
    assert response.get_json()["error"] == "invalid_client"
    assert response.get_json()["error_description"]
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["Cache-Control"] == "no-store"


def test_a_well_formed_basic_header_still_authenticates(client, make_rp):
    rp = make_rp()
    response = client.post("/introspect", data={"token": "unknown"}, headers={
        "Authorization": "Basic " + _b64(f"{rp.client_id}:{rp.client_secret}".encode())})
    assert response.status_code == 200 and response.get_json() == {"active": False}


def test_a_hostile_app_with_a_broken_header_learns_nothing_about_a_real_client(client,
                                                                              make_rp):
    """A real client id with a non-UTF-8 secret: the same 401 as any broken header, and the
    real client is not authenticated."""
    rp = make_rp()
    response = client.post("/introspect", data={"token": "x"}, headers={
        "Authorization": "Basic " + _b64(rp.client_id.encode() + b":\xff" * 3)})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


@FUZZ
@given(raw=st.binary(max_size=60), encode=st.booleans(),
       path=st.sampled_from(CLIENT_AUTH_PATHS))
def test_any_basic_header_is_never_a_server_error(app, raw, encode, path):
    value = _b64(raw) if encode else raw.decode("latin-1")
    if any(c in value for c in "\r\n\x00"):
        return  # not a header value HTTP can carry
    response = app.test_client().post(path, data={"grant_type": "refresh_token",
                                                  "refresh_token": "r", "token": "t"},
                                      headers={"Authorization": "Basic " + value})
    assert response.status_code < 500
    try:
        parse_basic("Basic " + value)
    except MalformedBasic:
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_client"


# ----------------------------------------------------------------------------- JSON bounds
def test_depth_is_counted_without_parsing():
    assert json_depth(json.dumps(nested(JSON_MAX_DEPTH)).encode()) == JSON_MAX_DEPTH
    assert json_depth(b'{"a": "[[[[{{{{", "b": ["\\"]]]"]}') == 2
    assert json_depth(b"[" * 100_000) == 100_000  # no RecursionError either


def _json_endpoints(admin_headers, iat_headers):
    admin, _school = admin_headers
    return [("/register", iat_headers), ("/api/admin/clients", admin),
            ("/api/admin/schools", admin), ("/api/admin/accounts", admin),
            ("/api/admin/initial-access-tokens", admin)]


@pytest.mark.parametrize("body", ["deep", "very deep", "huge"])
def test_too_deep_or_too_large_json_is_a_clear_400_everywhere(app, admin_headers, iat_headers,
                                                             body):
    raw = {"deep": json.dumps({"client_name": "x", "jwks": nested(JSON_MAX_DEPTH)}),
           "very deep": "[" * 20_000 + "]" * 20_000,
           "huge": json.dumps({"client_name": "x" * JSON_MAX_BYTES})}[body]
    for path, headers in _json_endpoints(admin_headers, iat_headers):
        response = app.test_client().post(path, data=raw, content_type="application/json",
                                          headers=headers)
        assert response.status_code == 400, (path, response.get_data(as_text=True)[:200])
        description = response.get_json()["error_description"]
        assert str(JSON_MAX_BYTES if body == "huge" else JSON_MAX_DEPTH) in description, \
            (path, description)


def test_json_at_the_limits_is_read(app, admin_headers):
    """Exactly at the depth limit and near the size limit the body is parsed and judged on
    its content (here: a school created), not refused by the limits."""
    admin, _school = admin_headers
    code = unique("edge")
    body = {"code": code, "name": "端っこ小学校", "extra": nested(JSON_MAX_DEPTH - 1)}
    raw = json.dumps(body)
    raw = raw[:-1] + ', "pad": "' + "p" * (JSON_MAX_BYTES - len(raw) - 12) + '"}'
    assert len(raw.encode()) <= JSON_MAX_BYTES
    assert json_depth(raw.encode()) == JSON_MAX_DEPTH
    response = app.test_client().post("/api/admin/schools", data=raw,
                                      content_type="application/json", headers=admin)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["code"] == code


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=40)


@FUZZ
@given(value=JSON_VALUES, wrap=st.integers(min_value=0, max_value=40),
       index=st.integers(min_value=0, max_value=4))
def test_any_json_shape_is_never_a_server_error(app, admin_headers, iat_headers, value, wrap,
                                                index):
    path, headers = _json_endpoints(admin_headers, iat_headers)[index]
    if index == 2:
        return  # creating schools from random input would litter the shared database
    raw = json.dumps(nested(wrap, value))
    response = app.test_client().post(path, data=raw, content_type="application/json",
                                      headers=headers)
    assert response.status_code < 500, (path, raw[:200], response.status_code)
    if json_depth(raw.encode()) > JSON_MAX_DEPTH:
        assert response.status_code == 400


# ----------------------------------------------------------------------------- 405 Allow
@pytest.mark.parametrize(("method", "path", "kind"), [
    ("PUT", "/token", "json"), ("GET", "/revoke", "json"), ("DELETE", "/userinfo", "json"),
    ("POST", "/jwks.json", "html"), ("PUT", "/login", "html"), ("DELETE", "/authorize", "html"),
    ("PATCH", "/api/admin/clients", "json"), ("GET", "/api/admin/accounts/x/lock", "json"),
    ("PUT", "/register", "json"), ("GET", "/login/card/verify", "json")])
def test_405_keeps_its_allow_header(app, client, method, path, kind):
    response = client.open(path, method=method)
    assert response.status_code == 405
    adapter = app.url_map.bind("localhost")
    expected = set(adapter.allowed_methods(path))
    assert set(m.strip() for m in response.headers["Allow"].split(",")) == expected
    assert method not in expected
    assert response.mimetype == ("application/json" if kind == "json" else "text/html")


# ----------------------------------------------------------------------------- OpenAPI
def _json_request_bodies(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody") if isinstance(op, dict) else None
            if body and "application/json" in body["content"]:
                yield f"{method.upper()} {path}", body


def test_openapi_states_the_json_limits_the_code_enforces(client):
    doc = client.get("/api/openapi.json").get_json()
    bodies = dict(_json_request_bodies(doc))
    assert len(bodies) >= 6
    for label, body in bodies.items():
        assert body["x-max-bytes"] == JSON_MAX_BYTES, label
        assert body["x-max-depth"] == JSON_MAX_DEPTH, label
    assert f"at most {JSON_MAX_BYTES} bytes" in doc["info"]["description"]


ACCOUNT_FIELDS = ["login_id", "display_name", "grade", "class_name", "school_code"]


@pytest.mark.parametrize("field", ACCOUNT_FIELDS)
def test_openapi_max_length_of_account_fields_is_what_the_api_enforces(client, admin_headers,
                                                                       field):
    doc = client.get("/api/openapi.json").get_json()
    schema = doc["paths"]["/api/admin/accounts"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"][field]
    limit = schema["maxLength"]
    headers, school_code = admin_headers

    def create(value: str):
        body = {"school_code": school_code, "login_id": unique("len")[:20],
                "display_name": "名前", "grade": "1", "class_name": "1", field: value}
        return client.post("/api/admin/accounts", json=body, headers=headers)

    too_long = create("a" * (limit + 1))
    assert too_long.status_code == 400, too_long.get_json()
    if field == "school_code":
        return  # a code of exactly the limit would have to exist to be accepted
    at_limit = create(("b" + unique("x").replace("-", ""))[:limit].ljust(limit, "c"))
    assert at_limit.status_code == 201, (field, at_limit.get_json())


# ----------------------------------------------------------------------------- multipart
@pytest.mark.parametrize("disposition", ["form-data", 'form-data; filename="a.csv"'])
@pytest.mark.parametrize("path", ["/login", "/token", "/api/admin/roster/preview",
                                  "/admin/roster"])
def test_a_multipart_part_without_a_name_is_not_a_server_error(app, path, disposition):
    """Found by the schemathesis negative run: a form part with no name reached the NUL
    guard (and the CSRF check) as a None key."""
    body = (f"--XX\r\nContent-Disposition: {disposition}\r\n\r\nv\r\n--XX--\r\n").encode()
    response = app.test_client().post(path, data=body,
                                      content_type="multipart/form-data; boundary=XX")
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert "has no name" in response.get_data(as_text=True)


def _query_bounds():
    from idp.admin.openapi import openapi_document

    doc = openapi_document("http://127.0.0.1:5000")
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            for param in op.get("parameters", []):
                if param["in"] == "query" and "maxLength" in param["schema"]:
                    yield method.upper(), path, param["name"], param["schema"]["maxLength"]


@pytest.mark.parametrize(("method", "path", "name", "limit"), list(_query_bounds()))
def test_every_query_max_length_in_the_document_is_enforced(client, admin_headers, method,
                                                            path, name, limit):
    """A query value one over the document's maxLength is refused (not cut and answered)."""
    headers, _school = admin_headers
    url = path.replace("{", "").replace("}", "")
    response = client.open(url, method=method, headers=headers,
                           query_string={name: "a" * (limit + 1)})
    assert 400 <= response.status_code < 500, (url, name, response.status_code)
    at_limit = client.open(url, method=method, headers=headers,
                           query_string={name: "a" * limit})
    assert at_limit.status_code in (200, 404), (url, name, at_limit.status_code)
