"""The evaluation report names uploaded datasets by the names their tenant gave them, with
the id beside (models/metrics/report.py), in report.html and report.json."""

from __future__ import annotations

import json

from models.metrics.report import EvaluationReport, GeneratorInfo
from models.metrics.utility import DataDescription

DS = "ds_9ba309" + "0" * 26
OTHER = "ds_" + "1" * 32  # an id with no name known (a dataset deleted since)


def report(names: dict[str, str]) -> EvaluationReport:
    return EvaluationReport(
        reference=f"{DS}:test",
        floor_pair=f"{DS}:train (40 images) and {DS}:test (10 images)",
        synthetic_count=20,
        reference_count=10,
        kept_per_set=10,
        seeds=[0],
        metrics=[],
        feature_space="classifier",
        features_note="",
        features=[],
        reference_classifier={"name": "small_cnn", "trained_on": f"40 images of {DS}:train"},
        generator=GeneratorInfo(
            name="signs-ddpm:1", engine="ddpm", training_data=DataDescription(OTHER, "train", 40)
        ),
        code_version="test",
        config={},
        dataset_names=names,
    )


def test_the_html_shows_each_named_dataset_by_name_with_its_id_beside():
    page = report({DS: "road <signs>"}).to_html()
    assert f"road &lt;signs&gt;:test ({DS})" in page  # the name escaped, the split kept
    assert f"road &lt;signs&gt;:train ({DS}) (40 images)" in page
    assert f"{DS}:test" not in page  # never the id alone where a name is known
    assert f"{OTHER}:train" in page  # no name known: the id as it was


def test_report_json_lists_the_names_and_keeps_ids_in_the_figures():
    body = json.loads(report({DS: "road signs"}).to_json())
    assert body["datasets"] == [{"id": DS, "name": "road signs"}]
    assert body["reference"] == f"{DS}:test"  # machine-read fields keep the stable id


def test_without_names_the_page_is_unchanged():
    assert f"{DS}:test" in report({}).to_html()
