"""Bugs the fault matrix found in `hsnap_tui` (tests/fault_matrix.py), each as the
smallest test that shows it. They failed before the fix and pass now."""

from __future__ import annotations

import pytest
from hcloud import APIException

from hsnap_tui.core.errors import explain_error
from hsnap_tui.core.jobs import JobState
from tests.test_core_jobs import Rig


def test_an_unreadable_200_that_made_nothing_is_sent_again(sim):
    rig = Rig(sim)
    server = rig.server("web-prod-01")
    # before processing (after=False): a 200 with cut-off JSON, and no image made
    sim.add_fault("malformed_json", path_prefix=f"/v1/servers/{server.id}/actions/create_image")
    rig.submit("web-prod-01")
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED, (job.error_code, job.error_message)
    assert [p["status"] for p in rig.posts()] == [200, 201]


@pytest.mark.parametrize("code", ["bad_gateway", "gateway_timeout"])
def test_gateway_codes_are_not_explained_as_refusals(code):
    explanation = explain_error(APIException(code=code, message=code, details=None))
    assert "refused" not in explanation.meaning
