"""Read-only sessions, rejected tokens, secrets, logging, context switching and fuzzed
inputs: the app stays correct and quiet."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsnap_tui.config import CliConfig, ConfigError, Context, Settings, resolve
from hsnap_tui.core.actions import ActionIdError, parse_action_id
from hsnap_tui.core.api import HetznerApi, ReadOnlyError
from hsnap_tui.core.errors import explain
from hsnap_tui.core.jobs import JobState
from hsnap_tui.core.labels import LabelError, RowFilter
from hsnap_tui.core.models import Server
from hsnap_tui.core.naming import TemplateError, check_labels, render_description
from hsnap_tui.core.retention import RetentionError, parse_keep
from hsnap_tui.logs import setup_logging
from hsnap_tui.ui.app import HsnapApp
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog
from tests.conftest import make_app, poll, settle
from tests.test_servers_view import server_named
from tests.test_snapshot_flow import highlight, tick

SERVER = Server(
    id=7,
    name="web-1",
    status="running",
    locked=False,
    server_type="cx22",
    location="fsn1",
    ipv4=None,
    ipv6=None,
)


def mutations(sim):
    return [r for r in sim.requests() if r["method"] not in ("GET", "HEAD")]


# ---- read-only ----------------------------------------------------------------------


def test_read_only_is_enforced_in_core(sim):
    api = HetznerApi(sim.token, sim.url, read_only=True)
    server_id = next(iter(sim.world.servers))
    image_id = next(i for i, v in sim.world.images.items() if v["type"] == "snapshot")
    with pytest.raises(ReadOnlyError):
        api.create_image(server_id, "x", {})
    with pytest.raises(ReadOnlyError):
        api.delete_image(image_id)
    with pytest.raises(ReadOnlyError):  # even straight through the SDK
        api.client.servers.power_off(api.client.servers.get_by_id(server_id))
    assert mutations(sim) == []
    assert api.servers()  # reading works
    assert "read-only" in explain(ReadOnlyError("read-only session: POST not sent"))


async def test_read_only_app_greys_out_and_sends_nothing(sim):
    app = make_app(sim)
    app.api.go_read_only("--read-only")
    async with app.run_test(size=(140, 40)) as pilot:
        await poll(pilot)
        assert "READ-ONLY" in app.status_text().plain
        bindings = {b.binding.action: b.enabled for b in app.screen.active_bindings.values()}
        assert bindings["snapshot"] is False
        await pilot.press("s")
        assert not isinstance(app.screen, SnapshotDialog)
        await pilot.press("2")
        bindings = {b.binding.action: b.enabled for b in app.screen.active_bindings.values()}
        # delete is greyed out; the retention preview is harmless and works (issue 11)
        assert bindings["delete"] is False and bindings["retention"] is True
        await pilot.press("d", "p")
        assert app.screen.query_one("#retention-apply").disabled
        await pilot.press("enter")
        assert mutations(sim) == []


async def test_token_readonly_answer_switches_the_session_to_read_only(make_sim):
    sim = make_sim(read_only_token="read-only-token-1234")
    api = HetznerApi("read-only-token-1234", sim.url)
    app = HsnapApp(api, demo=True, now=sim.clock.now, clock=sim.clock.now, poll_live=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await poll(pilot)
        assert not app.read_only
        await highlight(pilot, server_named(sim, "web-prod-01"))
        await pilot.press("s", "enter")
        await poll(pilot)
        [post] = mutations(sim)
        assert post["status"] == 403
        assert app.read_only and "token_readonly" in app.api.read_only_reason
        assert "READ-ONLY" in app.status_text().plain
        assert any("Switched to read-only" in n.message for n in app._notifications)
        job = app.jobs.jobs()[0]
        assert job.state == JobState.FAILED and job.error_code == "token_readonly"
        await pilot.press("s")
        assert not isinstance(app.screen, SnapshotDialog)
        await tick(pilot, sim)
        assert len(mutations(sim)) == 1


async def test_token_revoked_mid_session_is_shown_clearly(sim):
    app = make_app(sim)
    async with app.run_test(size=(140, 40)) as pilot:
        await poll(pilot)
        sim.token = "rotated-token"  # someone revoked ours
        await tick(pilot, sim)
        line = app.status_text().plain
        assert "TOKEN REJECTED" in line and "STALE" in line
        assert any("did not accept the token" in n.message for n in app._notifications)
        assert app.screen.query_one("ServerTable").row_count == 24  # last data stays


# ---- secrets ------------------------------------------------------------------------

SECRET = "Zq7-SECRET-TOKEN-do-not-show-4711"


async def test_the_token_never_shows(make_sim, tmp_path, monkeypatch):
    monkeypatch.setenv("HSNAP_LOG_DIR", str(tmp_path / "logs"))
    sim = make_sim(token=SECRET, scenario="demo")
    log_file, _ = setup_logging(debug=True, secrets=[SECRET])
    from hsnap_tui.core.audit import AuditLog

    audit = AuditLog(tmp_path / "audit.jsonl", context="prod", endpoint=sim.url)
    app = make_app(sim, audit=audit, demo=False, context="prod")
    shots = []
    async with app.run_test(size=(140, 40)) as pilot:
        await poll(pilot)
        shots.append(app.export_screenshot())
        await highlight(pilot, server_named(sim, "api-prod-01"))
        await pilot.press("s", "enter")
        await poll(pilot)
        await pilot.press("enter")
        await settle(pilot)
        shots.append(app.export_screenshot())
        await pilot.press("escape", "3")
        shots.append(app.export_screenshot())
        await pilot.press("a")
        await pilot.press(*"42", "enter")
        await settle(pilot)
        shots.append(app.export_screenshot())
        await pilot.press("escape", "2", "p")
        shots.append(app.export_screenshot())
        await pilot.press("escape", "question_mark")
        shots.append(app.export_screenshot())
        sim.token = "rotated"
        await tick(pilot, sim)
        shots.append(app.export_screenshot())
        texts = [n.message for n in app._notifications]
    for handler in logging.getLogger("hsnap_tui").handlers:
        handler.flush()
    settings_obj = Settings(token=SECRET, endpoint=sim.url, context="prod")
    evidence = {
        "screens": "\n".join(shots),
        "notifications": "\n".join(texts),
        "log": Path(log_file).read_text(),
        "audit": (tmp_path / "audit.jsonl").read_text(),
        "reprs": " ".join(
            repr(x)
            for x in (settings_obj, app.api, sim, Context("prod", SECRET), app.api.client._client)
        ),
        "errors": " ".join(explain(e) for e in _errors_with(SECRET)),
    }
    assert evidence["log"] and evidence["audit"] and len(shots) == 7
    for where, text in evidence.items():
        assert SECRET not in text, f"the token shows in {where}"
    assert "GET /v1/servers" in evidence["log"]  # --debug logged the requests


def _errors_with(secret):
    from hcloud import APIException

    yield APIException("unauthorized", "unable to authenticate", None, correlation_id="ab" * 8)
    yield ConfigError("context 'x' has an empty token")
    try:
        resolve(environ={"HCLOUD_TOKEN": "   "})
    except ConfigError as exc:
        yield exc


def test_log_redacts_secrets_even_if_someone_logs_them(tmp_path):
    path, redact = setup_logging(secrets=["first-secret"], directory=tmp_path)
    redact.add("second-secret")
    logger = logging.getLogger("hsnap_tui.test")
    logger.info("token is %s", "first-secret")
    try:
        raise RuntimeError("second-secret leaked")
    except RuntimeError:
        logger.exception("boom")
    for handler in logging.getLogger("hsnap_tui").handlers:
        handler.flush()
    text = path.read_text()
    assert "token is ***" in text and "*** leaked" in text
    assert "first-secret" not in text and "second-secret" not in text


# ---- context switching --------------------------------------------------------------


async def test_switch_context_keeps_following_jobs(make_sim):
    prod, staging = (
        make_sim(seed=1, token="prod-token-1111"),
        make_sim(seed=2, servers=12, token="staging-token-2222"),
    )
    contexts = [
        Context("prod", "prod-token-1111", prod.url),
        Context("staging", "staging-token-2222", staging.url),
    ]

    def connect(context):
        return HetznerApi(context.token, context.endpoint)

    api = HetznerApi("prod-token-1111", prod.url)
    app = HsnapApp(
        api,
        context="prod",
        now=prod.clock.now,
        clock=prod.clock.now,
        poll_live=False,
        contexts=lambda: contexts,
        connect=connect,
    )
    async with app.run_test(size=(140, 40)) as pilot:
        await poll(pilot)
        await highlight(pilot, server_named(prod, "web-prod-01"))
        await pilot.press("s", "enter")
        await poll(pilot)
        assert app.jobs.active_jobs()
        await pilot.press("c")
        await pilot.press("down", "enter")  # staging
        message = str(app.screen.query_one("#confirm-message").content)
        assert "keeps following it in the background" in message
        await pilot.press("y")
        await settle(pilot)
        assert app.context == "staging"
        assert "staging" in app.status_text().plain
        assert "+1 job in other contexts" in app.status_text().plain
        table = app.screen.query_one("ServerTable")
        assert table.row_count == 12
        prod_job = app.all_jobs()[0]
        for _ in range(60):
            if not app.background[0].jobs.active_jobs():
                break
            prod.advance(10)
            staging.advance(10)
            app.refresher.request_fast()
            app.background[0].refresher.request_fast()
            await poll(pilot)
        # the finished job of the context left behind stays visible, with its image
        assert [s.name for s in app.background] == ["prod"]
        done = app.engine_of(prod_job.id).get(prod_job.id)
        assert done.state == JobState.SUCCEEDED and done.image_id in prod.world.images
        assert [j.state for j in app.all_jobs() if j.id == prod_job.id] == [JobState.SUCCEEDED]
        assert "job in other contexts" not in app.status_text().plain
        posts = [r for r in prod.requests() if r["method"] == "POST"]
        assert len(posts) == 1 and not mutations(staging)


# ---- fuzzed inputs ------------------------------------------------------------------

TEXT = st.text(max_size=120)


@settings(max_examples=200)
@given(TEXT)
def test_every_text_input_gives_a_result_or_a_message(text):
    # the filter bar (`/` in views 1 and 2): a filter, or a one-line reason
    try:
        RowFilter.parse(text).matches(SERVER.labels, SERVER.name)
    except LabelError as exc:
        assert str(exc) and "\n" not in str(exc)
    # the action ID (`a`)
    try:
        assert parse_action_id(text) >= 1
    except ActionIdError as exc:
        assert str(exc)
    # the description template and the labels (`s`)
    try:
        assert render_description(text, SERVER, 1795694400.0)
    except TemplateError as exc:
        assert str(exc)
    try:
        check_labels(text)
    except TemplateError as exc:
        assert str(exc)
    # the retention N (`p`)
    try:
        assert parse_keep(text) >= 1
    except RetentionError as exc:
        assert str(exc)
    # a context name (`--context`, `c`)
    config = CliConfig(Path("cli.toml"), None, (Context("prod", "t"),))
    try:
        config.context(text)
    except ConfigError as exc:
        assert "known: prod" in str(exc)


async def test_a_rejected_token_is_said_once_and_not_asked_again_until_r(sim):
    api = HetznerApi("not-the-token", sim.url)
    app = HsnapApp(
        api, demo=False, context="prod", now=sim.clock.now, clock=sim.clock.now, poll_live=False
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        assert "TOKEN REJECTED" in app.status_text().plain
        said = [n for n in app._notifications if n.title == "Token rejected"]
        assert len(said) == 1 and "press c for another context" in said[0].message
        assert not any("unreachable" in (n.title or "") for n in app._notifications)
        asked = len(sim.requests())
        for _ in range(3):  # the poll loop (or anything else) does not ask again …
            assert app.start_poll() is None
            await pilot.pause()
        assert len(sim.requests()) == asked
        await pilot.press("r")  # … until r
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(sim.requests()) > asked
        assert len([n for n in app._notifications if n.title == "Token rejected"]) == 2


async def test_control_characters_in_api_text_never_reach_the_terminal(make_sim):
    """A description with an escape sequence (retitle the terminal, clear the screen)
    and a BEL: shown as symbols in every view that names it, never sent raw."""
    from textual.widgets import DataTable

    from hsnap_tui.core.models import printable

    evil = "evil\x1b]2;PWNED\x07\x1b[2J end"
    assert printable(evil) == "evil␛]2;PWNED␇␛[2J end"
    assert printable("plain text") == "plain text"
    sim = make_sim(scenario="demo")
    web = server_named(sim, "db-prod-02")
    with sim.lock:
        sim.world.create_image(web, {"type": "snapshot", "description": evil, "labels": {}})
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await pilot.press("2")
        await pilot.pause()
        table = app.screen.query_one("#snapshots", DataTable)
        cells = [str(c) for row in table.ordered_rows for c in table.get_row(row.key)]
        assert any("evil␛]2;PWNED␇" in c for c in cells)
        assert not any("\x1b" in c or "\x07" in c for c in cells)
        # the snapshot's server's details list it the same way
        [snapshot] = [s for s in app.fleet.snapshots if s.description.startswith("evil")]
        assert snapshot.description == printable(evil)
