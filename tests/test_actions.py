"""Core of lock investigation: action-ID parsing and the explanation of every error."""

from __future__ import annotations

import pytest
import requests
from hcloud import APIException
from hypothesis import given
from hypothesis import strategies as st

from hsnap_tui.core.actions import (
    MAX_ACTION_ID,
    ActionIdError,
    find_correlation_id,
    not_found_message,
    parse_action_id,
    unexplained_lock_message,
)
from hsnap_tui.core.errors import API_ERRORS, explain, explain_error

# The codes of the API's documented error table, and the ones the SDK adds.
DOCUMENTED = [
    "forbidden",
    "unauthorized",
    "invalid_input",
    "json_error",
    "locked",
    "not_found",
    "rate_limit_exceeded",
    "resource_limit_exceeded",
    "resource_unavailable",
    "server_error",
    "service_error",
    "uniqueness_error",
    "protected",
    "maintenance",
    "conflict",
    "unsupported_error",
    "token_readonly",
    "unavailable",
    "timeout",
    "deprecated_api_endpoint",
]


@pytest.mark.parametrize("code", DOCUMENTED)
def test_every_documented_code_is_explained_with_the_request_id(code):
    assert code in API_ERRORS
    exc = APIException(code, f"the {code} message", None, correlation_id="f21b9dc9d1535310")
    explanation = explain_error(exc)
    assert explanation.code == code
    assert explanation.summary == f"the {code} message"
    assert explanation.meaning and explanation.advice
    text = str(explanation)
    assert "request ID f21b9dc9d1535310 for Hetzner support" in text
    assert explanation.meaning in text


def test_locked_points_at_the_inspector():
    text = explain(
        APIException(
            "locked",
            "cannot perform operation because server is locked",
            None,
            correlation_id="f21b9dc9d1535310",
        )
    )
    assert "busy with another action" in text and "inspect it with i" in text


def test_invalid_input_names_the_fields():
    exc = APIException(
        "invalid_input",
        "invalid input in field 'labels'",
        {"fields": [{"name": "labels", "messages": ["bad key"]}]},
    )
    assert "labels: bad key" in explain(exc)


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (
            APIException(200, "OK", {"content": b"{"}, correlation_id="0123456789abcdef"),
            "could not be read",
        ),
        (APIException(502, "Bad Gateway", None), "gateway"),
        (APIException(504, "Gateway Timeout", None), "did not answer in time"),
        (APIException(418, "I'm a teapot", None), "HTTP 418"),
        (APIException("action_failed", "Action failed", None), "ended in an error"),
        (APIException("brand_new_code", "something new", None), "refused the request"),
        (requests.ConnectionError("boom"), "cannot reach the API"),
        (requests.Timeout("slow"), "did not answer in time"),
        (requests.TooManyRedirects("loop"), "request failed"),
        (KeyError("x"), "unexpected error"),
    ],
)
def test_sdk_codes_and_network_errors(exc, words):
    assert words in explain(exc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        (" 42 ", 42),
        ("#42", 42),
        ("# 42", 42),
        ("1930144902", 1930144902),
        (str(MAX_ACTION_ID), MAX_ACTION_ID),
        ("0001", 1),
    ],
)
def test_action_ids_accepted(text, expected):
    assert parse_action_id(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("f21b9dc9d1535310", "is a request ID"),
        ("F21B9DC9D1535310", "is a request ID"),
        (
            "cannot perform operation because server is locked (locked, f21b9dc9d1535310)",
            "f21b9dc9d1535310 is a request ID",
        ),
        ("", "enter an action ID"),
        ("   ", "enter an action ID"),
        ("#", "enter an action ID"),
        ("0", "start at 1"),
        ("-1", "positive"),
        ("1e3", "'1e3' is not a whole number"),
        ("4.2", "not a whole number"),
        ("0x2a", "not a whole number"),
        ("9007199254740992", "too large"),
        ("99999999999999999999", "too large"),
        ("٤٢", "digits 0-9"),
        ("４２", "digits 0-9"),
        ("4 2", "not a whole number"),
        ("x" * 500, "500 characters long"),
        ("abc", "not a whole number"),
    ],
)
def test_action_ids_refused_with_a_specific_message(text, message):
    with pytest.raises(ActionIdError) as error:
        parse_action_id(text)
    assert message in str(error.value)
    if "request ID" in message:
        assert error.value.correlation_id == "f21b9dc9d1535310"


@given(st.text(max_size=100))
def test_any_input_gives_an_id_or_a_message(text):
    try:
        value = parse_action_id(text)
    except ActionIdError as exc:
        assert str(exc)
    else:
        assert 1 <= value <= MAX_ACTION_ID


def test_correlation_id_detection_ignores_plain_digits():
    assert find_correlation_id("1234567890123456") is None
    assert find_correlation_id("(locked, 764e3dbf7d2ad1c4)") == "764e3dbf7d2ad1c4"
    assert find_correlation_id("764e3dbf7d2ad1c4a") is None  # 17 hex digits: not one


def test_messages_for_unknown_ids_and_unexplained_locks():
    assert not_found_message(42) == "There is no action 42 in this project."
    assert "request ID (X-Correlation-Id)" in not_found_message(1234567890123456)
    text = unexplained_lock_message("db-prod-01", "0123456789abcdef")
    assert "none of this project's running actions names it" in text
    assert "request ID 0123456789abcdef" in text
