"""The contract checker itself: it must catch what breaks the schema, or the contract
tests prove nothing."""

from __future__ import annotations

import jsonschema
import pytest

from tests.contract.openapi import template_for, validate_response


def test_templates_prefer_literal_segments():
    assert template_for("/v1/servers/actions") == "/servers/actions"
    assert template_for("/v1/servers/42") == "/servers/{id}"
    assert template_for("/v1/servers/42/actions/create_image") == (
        "/servers/{id}/actions/create_image"
    )
    assert template_for("/v1/volumes") is None


def test_checker_rejects_broken_bodies(sim):
    import requests

    body = requests.get(
        sim.url + "/servers", headers={"Authorization": f"Bearer {sim.token}"}, timeout=5
    ).json()
    validate_response("GET", "/v1/servers", 200, body)
    broken = dict(body)
    del broken["meta"]
    with pytest.raises(jsonschema.ValidationError):
        validate_response("GET", "/v1/servers", 200, broken)
    server = dict(body["servers"][0], status="sleeping")
    with pytest.raises(jsonschema.ValidationError):
        validate_response("GET", "/v1/servers/1", 200, {"server": server})
    created = dict(body["servers"][0], created="yesterday")
    with pytest.raises(jsonschema.ValidationError):
        validate_response("GET", "/v1/servers/1", 200, {"server": created})
    with pytest.raises(jsonschema.ValidationError):
        validate_response("GET", "/v1/servers", 404, {"error": {"message": "no code"}})
    with pytest.raises(LookupError):
        validate_response("PATCH", "/v1/servers", 200, {})
    # nullable fields accept null, non-nullable do not
    server = dict(body["servers"][0], backup_window=None)
    validate_response("GET", "/v1/servers/1", 200, {"server": server})
    with pytest.raises(jsonschema.ValidationError):
        validate_response("GET", "/v1/servers/1", 200, {"server": dict(server, name=None)})
