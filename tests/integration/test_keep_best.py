"""Keep-best through the API: a scored train job says which step it kept, its score and
the last step's, in its result, its version and lineage; the scores are curve rows and
``output`` events; a model without labels is scored by FD alone; every engine is scored
the same way, ddpm's guidance default is chosen on the kept weights and recorded, and
early stopping ends a job before its ``max_steps`` and says so."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import session_scope
from core.jobs.orm import JobEvent

pytestmark = pytest.mark.integration

GAN = {"max_steps": 4, "batch_size": 16, "image_size": 8, "width": 16, "eval_every": 2}
OTHERS = {
    "ebm": {
        "max_steps": 4, "batch_size": 16, "image_size": 8, "width": 16, "eval_every": 2,
        "langevin_steps": 2, "sample_steps": 3,
    },
    "ddpm": {
        "max_steps": 4, "batch_size": 16, "image_size": 8, "base_channels": 16, "eval_every": 2,
    },
}  # fmt: skip


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
    # Thinned (as the console reads a long run), the evaluations' rows are all kept.
    thinned = tenant.get(f"/v1/jobs/{job_id}/curves", params={"every": 3}).json()["items"]
    assert [int(r["step"]) for r in thinned] == [2, 3, 4]
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


@pytest.mark.parametrize("engine", sorted(OTHERS))
def test_every_engine_keeps_its_best_evaluation_through_the_api(worker, tenant, engine):
    job = tenant.submit(
        {"kind": "train", "engine": engine, "dataset": "shapes", "model_name": f"kb-{engine}",
         "config": OTHERS[engine]}
    )  # fmt: skip
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    selection = done["result"]["selection"]
    assert selection["keep"] == "best" and selection["evaluations"] == 2
    assert selection["chosen"]["step"] in (2, 4) and selection["last"]["step"] == 4
    assert {"fd", "label_agreement"} <= set(selection["chosen"])
    version = tenant.get(f"/v1/models/kb-{engine}/versions").json()[0]
    assert version["metrics"]["selection"] == selection
    tuned = {t["option"]: t for t in selection["sampling_defaults"]}
    if engine != "ddpm":
        assert tuned == {}
        return
    # ddpm: the guidance the request left out is chosen on the kept weights from the
    # tried scales, and the version's config holds it (generate jobs sample with it).
    guidance = tuned["sample_guidance_scale"]
    tried = {row["value"] for row in guidance["scores"]}
    assert len(tried) >= 3 and guidance["chosen"] in tried
    assert version["config"]["sample_guidance_scale"] == guidance["chosen"]
    # The choice is the best by the run's own rule: no tried scale beats it.
    chosen_row = next(r for r in guidance["scores"] if r["value"] == guidance["chosen"])
    top = max(r["label_agreement"] for r in guidance["scores"])
    eligible = [r for r in guidance["scores"] if r["label_agreement"] >= top - 0.01]
    assert chosen_row in eligible
    assert chosen_row["fd"] == min(r["fd"] for r in eligible)


def test_early_stopping_ends_the_job_before_max_steps_and_says_why(worker, tenant, settings):
    # Patience 1 with an evaluation every step: the first evaluation that does not beat
    # the best so far ends the run (a tiny gan's FD on 200 images is not monotone).
    config = {**GAN, "max_steps": 30, "eval_every": 1, "early_stop_patience": 1}
    job = tenant.submit(
        {"kind": "train", "engine": "gan", "dataset": "shapes", "model_name": "stops",
         "config": config}
    )  # fmt: skip
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    selection = done["result"]["selection"]
    stopped = selection["stopped_early"]
    assert stopped is not None, selection
    assert stopped["reason"] == "1 evaluation without a better score"
    assert stopped["step"] == selection["last"]["step"] == selection["last_step"] < 30
    assert selection["evaluations"] == stopped["step"]
    assert selection["chosen"]["step"] < stopped["step"]
    # The output events show why: the last evaluation did not become the best.
    with session_scope(settings.database_url) as session:
        payloads = session.scalars(
            select(JobEvent.payload)
            .where(JobEvent.job_id == job["id"], JobEvent.type == "output")
            .order_by(JobEvent.id)
        ).all()
    evaluations = [p["output"]["evaluation"] for p in payloads if "evaluation" in p["output"]]
    assert evaluations[-1]["step"] == stopped["step"]
    assert evaluations[-1]["best"]["step"] == selection["chosen"]["step"]
