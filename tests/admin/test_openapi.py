"""The admin API's OpenAPI 3.1 document is valid and the API never answers 500 to anything
schemathesis makes from it (bounded: a few examples per operation)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.admin.conftest import api_token_for


def test_document_is_served_and_valid_openapi_3_1(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(doc)
    operations = list(schema.get_all_operations())
    assert len(operations) >= 25
    for result in operations:
        result.ok()  # raises when an operation's definition is broken
    assert {op.ok().label for op in operations} >= {"POST /api/admin/clients",
                                                    "POST /api/admin/roster/import"}


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@pytest.fixture(scope="module")
def admin_headers(svc, app):
    """A platform admin's token (so every operation is reachable, not just 401/403)."""
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, School
    from tests.conftest import unique

    with svc.db.session() as s:
        school = School(code=unique("fuzz"), name="ファズ小学校")
        s.add(school)
        s.flush()
        admin = Account(school_id=school.id, login_id=unique("fuzzadmin"),
                        role="platform_admin", password_hash=hash_password("fuzz fuzz fuzz"))
        s.add(admin)
    return {"Authorization": "Bearer " + api_token_for(svc, admin.id)}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Generated sector_identifier_uri / jwks_uri values must not reach the internet."""
    from idp import pairwise

    def refuse(url, timeout=5.0):
        raise pairwise.SectorError("network disabled in tests")

    monkeypatch.setattr(pairwise, "fetch_sector_document", refuse)
    monkeypatch.setattr("idp.clients.registry.fetch_sector_document", refuse)


def _operation_labels() -> list[str]:
    from idp.admin.openapi import openapi_document

    doc = openapi_document("http://127.0.0.1:5000")
    return [f"{method.upper()} {path}" for path, item in doc["paths"].items()
            for method in item if method != "parameters"]


@pytest.mark.parametrize("label", _operation_labels())
def test_admin_api_never_answers_500(api_schema, admin_headers, label):
    from hypothesis import given

    method, path = label.split(" ", 1)
    operation = api_schema[path][method].ok() if hasattr(api_schema[path][method], "ok") \
        else api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=6, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(headers=admin_headers)
        case.validate_response(response, checks=[not_a_server_error])

    run()


@pytest.mark.parametrize("label", _operation_labels())
def test_admin_api_refuses_what_the_document_forbids(api_schema, admin_headers, label):
    """Negative cases (schemathesis): input the document forbids — a string over its
    maxLength, a number out of range, a wrong type — is refused with a 4xx, never accepted
    and never a 500. This keeps the document exact about the bounds the code enforces."""
    from hypothesis import given
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import negative_data_rejection

    method, path = label.split(" ", 1)
    operation = api_schema[path][method]
    operation = operation.ok() if hasattr(operation, "ok") else operation

    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    @settings(max_examples=8, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(headers=admin_headers)
        case.validate_response(response, checks=[not_a_server_error, negative_data_rejection])

    run()
