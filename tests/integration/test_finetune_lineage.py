"""Fine-tuning from a registered version on an uploaded dataset, and the lineage both
versions report: training job, dataset with its content hash, parent, code version."""

from __future__ import annotations

import io

import numpy as np
import pytest

from models import datasets
from tests import archives
from tests.integration.conftest import TINY_DDPM
from tests.integration.uploads import upload_dataset

pytestmark = pytest.mark.integration


def shapes_npz(per_class: int) -> bytes:
    """``per_class`` 8x8 shapes of each of the 5 classes, as an uploaded .npz."""
    data = datasets.load("shapes", "test", image_size=8, count=200)
    keep = np.concatenate(
        [np.flatnonzero(data.labels.numpy() == c)[:per_class] for c in range(data.num_classes)]
    )
    buf = io.BytesIO()
    np.savez(
        buf,
        images=data.images.numpy()[keep],
        labels=data.labels.numpy()[keep],
        classes=np.array(data.class_names),
    )
    return buf.getvalue()


@pytest.fixture(scope="module")
def base(worker, make_tenant_module):
    tenant = make_tenant_module()
    job = tenant.submit(
        {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "base",
         "config": TINY_DDPM}
    )  # fmt: skip
    assert tenant.wait(job["id"])["status"] == "succeeded"
    dataset = upload_dataset(tenant, shapes_npz(5), "npz", name="five per class")
    assert dataset["status"] == "ready", dataset["error"]
    return tenant, dataset


def test_fine_tune_records_parent_dataset_hash_job_and_code_version(base):
    tenant, dataset = base
    job = tenant.submit(
        {
            "kind": "train",
            "engine": "ddpm",
            "dataset": dataset["id"],
            "model_name": "tuned",
            "init_from": "base:1",
            "config": {"max_steps": 3},
        }
    )
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    parent = tenant.get("/v1/models/base/versions").json()[0]
    tuned = tenant.get("/v1/models/tuned/versions").json()[0]
    assert tuned["parent_id"] == parent["id"]
    assert tuned["config"]["base_channels"] == TINY_DDPM["base_channels"]  # inherited
    assert tuned["config"]["max_steps"] == 3

    lineage = tenant.get("/v1/models/tuned/versions/1/lineage").json()
    assert lineage["created_by"] == "train"
    assert lineage["train_job_id"] == job["id"]
    assert lineage["parent"]["id"] == parent["id"]
    assert [a["name"] for a in lineage["ancestors"]] == ["base"]
    assert lineage["dataset"] == {
        "ref": f"{dataset['id']}:train",
        "id": dataset["id"],
        "name": "five per class",
        "sha256": dataset["sha256"],
    }
    assert lineage["code_version"].startswith("synthgen")

    parent_lineage = tenant.get("/v1/models/base/versions/1/lineage").json()
    assert parent_lineage["dataset"] == {"ref": "shapes:train", "builtin": True}
    assert [c["name"] for c in parent_lineage["children"]] == ["tuned"]


def test_fine_tuned_model_is_evaluated_against_the_uploaded_test_split(base):
    tenant, dataset = base
    job = tenant.submit(
        {
            "kind": "evaluate",
            "model": "base",
            "reference": f"{dataset['id']}:test",
            "count": 10,
            "metrics": ["fid", "class_coverage"],
            "config": {
                "features": "classifier",
                "classifier_epochs": 1,
                "sample_config": {"steps": 2},
            },
        }
    )
    done = tenant.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["summary"]["reference"] == f"{dataset['id']}:test"


def test_gan_fine_tunes_from_a_gan(base):
    tenant, dataset = base
    tiny = {"max_steps": 2, "batch_size": 8, "image_size": 8, "width": 8}
    first = tenant.submit(
        {"kind": "train", "engine": "gan", "dataset": "shapes", "model_name": "g", "config": tiny}
    )
    assert tenant.wait(first["id"])["status"] == "succeeded"
    second = tenant.submit(
        {"kind": "train", "engine": "gan", "dataset": dataset["id"], "model_name": "g",
         "init_from": "g", "config": {"max_steps": 2}}
    )  # fmt: skip
    assert tenant.wait(second["id"])["status"] == "succeeded"
    lineage = tenant.get("/v1/models/g/versions/2/lineage").json()
    assert (lineage["parent"]["name"], lineage["parent"]["version"]) == ("g", 1)


def test_init_from_a_model_of_another_engine_is_refused(base):
    tenant, dataset = base
    response = tenant.post(
        "/v1/jobs",
        json={"kind": "train", "engine": "gan", "dataset": dataset["id"], "model_name": "x",
              "init_from": "base:1"},
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "init_from"


def test_init_from_on_an_ebm_job_is_an_unknown_field(base):
    tenant, _ = base
    response = tenant.post(
        "/v1/jobs",
        json={"kind": "train", "engine": "ebm", "dataset": "shapes", "model_name": "x",
              "init_from": "base:1"},
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "init_from"


def test_fine_tuning_on_data_with_other_classes_fails_saying_why(base):
    tenant, _ = base
    two_classes = upload_dataset(tenant, archives.npz_bytes(4), "npz")
    job = tenant.submit(
        {"kind": "train", "engine": "ddpm", "dataset": two_classes["id"], "model_name": "y",
         "init_from": "base:1", "config": {"max_steps": 1}}
    )  # fmt: skip
    done = tenant.wait(job["id"])
    assert done["status"] == "failed"
    assert "5 classes" in done["error"]["message"]
    assert tenant.get("/v1/models/y/versions").status_code == 404
