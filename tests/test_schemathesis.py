"""The JSON API fuzzed from its own OpenAPI document with schemathesis, in-process over WSGI.

The document is loaded from the running app (`/api/v1/openapi.json`), so what is fuzzed is what is
served. Each operation gets schema-conforming (positive) and schema-violating (negative) cases, sent
with a valid key; the checks: never a 5xx, only documented status codes and content types, and
responses that match their documented schemas (the one error shape included).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = [
    ("POST", "/api/v1/comments/check"),
    ("GET", "/api/v1/comments/{comment_id}"),
    ("POST", "/api/v1/comments/{comment_id}/feedback"),
]
# Parsing, auth and the error shape do not depend on the database; fuzz_http covers PostgreSQL.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _operation(schema, method: str, path: str):
    return schema[path][method]


def test_document_lists_every_json_api_route(app):
    """The served OpenAPI document describes each /api/v1 route the app answers (so the fuzzing covers them)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    documented = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert set(OPERATIONS) <= documented
    routed = {
        (method, rule.rule.replace("<int:comment_id>", "{comment_id}"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and not rule.rule.endswith("openapi.json")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routed <= documented, routed - documented


@sqlite_only
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_conforms_under_fuzzing(app, site_key, method, path, mode):
    """Schemathesis cases for the operation never get a 5xx and every response matches the document."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = _operation(schema, method, path)
    strategy = operation.as_strategy(generation_mode=mode)
    headers = {"Authorization": f"Bearer {site_key}"}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=strategy)
    def run(case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()
