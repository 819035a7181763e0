"""The CLI's listings (models ls/versions/aliases, datasets ls) print through one helper,
output.listing: --json gives the API's own body, an empty list says what to do, else a table."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

from synthgen_client.cli import datasets, models

VERSION = {"version": 1, "engine": "ddpm", "dataset": "digits:train", "aliases": ["prod"],
           "created_at": "2026-12-07T18:00:00Z", "train_job_id": "j1", "privacy": None}  # fmt: skip
MODEL = {"name": "digits-ddpm", "versions": 1, "latest_version": VERSION, "aliases": {"prod": 1}}
ALIASES = {"items": [{"alias": "prod", "version": 1, "updated_by": "sg_abc",
                      "updated_at": "2026-12-07T18:00:00Z"}]}  # fmt: skip
DATASET = {"name": "signs", "id": "ds_" + "a" * 32, "status": "ready", "num_images": 10,
           "classes": ["a", "b"], "image_shape": [1, 8, 8], "created_at": None}  # fmt: skip


def client(models_: list, datasets_: list) -> SimpleNamespace:
    return SimpleNamespace(
        models=SimpleNamespace(
            list=lambda: models_, versions=lambda name: [VERSION], aliases=lambda name: ALIASES
        ),
        datasets=SimpleNamespace(list=lambda: datasets_),
    )


def args(*words: str, as_json: bool = False) -> argparse.Namespace:
    return argparse.Namespace(words=list(words), json=as_json)


def test_tables_under_their_headers(capsys):
    c = client([MODEL], [DATASET])
    models.run(c, args("ls"))
    models.run(c, args("versions", "digits-ddpm"))
    models.run(c, args("aliases", "digits-ddpm"))
    datasets.list_datasets(c, args())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "VERSIONS", "LATEST", "ALIASES", "ENGINE", "DATASET",
                                "CREATED"]  # fmt: skip
    assert lines[1].split()[:4] == ["digits-ddpm", "1", "1", "prod→1"]
    assert lines[2].split()[:2] == ["VERSION", "ALIASES"] and lines[3].split()[:2] == ["1", "prod"]
    assert lines[4].split()[0] == "ALIAS" and lines[5].split()[:3] == ["digits-ddpm@prod", "1",
                                                                        "sg_abc"]  # fmt: skip
    assert lines[6].split()[:3] == ["NAME", "ID", "STATUS"]
    assert lines[7].split()[:6] == ["signs", DATASET["id"], "ready", "10", "2", "1x8x8"]


def test_json_is_the_apis_own_body(capsys):
    c = client([MODEL], [DATASET])
    models.run(c, args("aliases", "digits-ddpm", as_json=True))
    assert json.loads(capsys.readouterr().out) == ALIASES  # the whole answer, not its items
    datasets.list_datasets(c, args(as_json=True))
    assert json.loads(capsys.readouterr().out) == [DATASET]


def test_an_empty_list_says_what_to_do(capsys):
    c = client([], [])
    models.run(c, args("ls"))
    datasets.list_datasets(c, args())
    out = capsys.readouterr().out
    assert "no models yet" in out and "synthgen datasets upload FILE --name NAME" in out
    models.run(c, args("ls", as_json=True))
    assert json.loads(capsys.readouterr().out) == []
