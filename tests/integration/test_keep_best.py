"""Keep-best through the API: a scored train job says which step it kept, its score and
the last step's, in its result, its version and lineage; the scores are curve rows and
``output`` events; a model without labels is scored by FD alone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import session_scope
from core.jobs.orm import JobEvent

pytestmark = pytest.mark.integration

GAN = {"max_steps": 4, "batch_size": 16, "image_size": 8, "width": 16, "eval_every": 2}


@pytest.fixture(scope="module")
def scored(worker, make_tenant_module):
    tenant = make_tenant_module()
    jobs = {}
    for name, extra in (
        ("labelled", {"early_stop_patience": 5}),
        ("unlabelled", {"conditional": False}),
    ):
        job = tenant.submit(
            {"kind": "train", "engine": "gan", "dataset": "shapes", "model_name": name,
             "config": {**GAN, **extra}}
        )  # fmt: skip
        done = tenant.wait(job["id"])
        assert done["status"] == "succeeded", done["error"]
        jobs[name] = done
    return tenant, jobs


def test_the_result_says_the_chosen_step_its_score_and_the_last_steps(scored):
    _, jobs = scored
    selection = jobs["labelled"]["result"]["selection"]
    assert selection["keep"] == "best" and selection["eval_every"] == 2
    assert selection["evaluations"] == 2 and selection["last"]["step"] == 4
    assert selection["chosen"]["step"] in (2, 4)
    assert {"fd", "label_agreement"} <= set(selection["chosen"])
    assert selection["stopped_early"] is None
    assert selection["held_out"]["source"] == "slice"
    assert selection["features"] == "shapes classifier (8px)"


def test_the_version_and_its_lineage_record_the_choice_and_the_held_out_slice(scored):
    tenant, jobs = scored
    selection = jobs["labelled"]["result"]["selection"]
    version = tenant.get("/v1/models/labelled/versions").json()[0]
    assert version["metrics"]["selection"] == selection
    assert version["config"]["keep"] == "best"
    lineage = tenant.get("/v1/models/labelled/versions/1/lineage").json()
    assert lineage["selection"]["held_out"] == selection["held_out"]
    held = selection["held_out"]
    assert jobs["labelled"]["result"]["spec"]["train_examples"] == held["of"] - held["count"]


def test_the_scores_are_curve_rows_and_events(scored, settings):
    tenant, jobs = scored
    job_id = jobs["labelled"]["id"]
    rows = tenant.get(f"/v1/jobs/{job_id}/metrics").json()["items"]
    scored_rows = {int(r["step"]): r for r in rows if "eval_fd" in r}
    assert sorted(scored_rows) == [2, 4]
    assert {"eval_label_agreement", "best_step", "loss_d"} <= set(scored_rows[4])
    with session_scope(settings.database_url) as session:
        payloads = session.scalars(
            select(JobEvent.payload)
            .where(JobEvent.job_id == job_id, JobEvent.type == "output")
            .order_by(JobEvent.id)  # without it Postgres may answer in any order
        ).all()
    evaluations = [p["output"]["evaluation"] for p in payloads if "evaluation" in p["output"]]
    assert [e["step"] for e in evaluations] == [2, 4]
    assert all("best" in e for e in evaluations)


def test_a_model_without_labels_is_scored_by_fd_only(scored):
    _, jobs = scored
    selection = jobs["unlabelled"]["result"]["selection"]
    assert set(selection["chosen"]) == {"step", "fd"}
    assert selection["criterion"] == "lowest FD"
