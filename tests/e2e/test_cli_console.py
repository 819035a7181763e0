"""The CLI commands for previews, models, aliases and logs, run as a user types them
against the embedded stack."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.e2e.test_cli import TINY_TRAIN, cli, one_line_error, submit


@pytest.fixture(scope="module")
def model(shared_stack) -> str:
    job_id = submit(shared_stack, {**TINY_TRAIN, "model_name": "clip"})
    assert cli("jobs", "wait", job_id, "-q", stack=shared_stack).returncode == 0
    return job_id


def test_preview_saves_a_grid_with_a_row_per_label(shared_stack, model, tmp_path):
    out = tmp_path / "grid.png"
    done = cli("preview", "clip", "--labels", "1,3", "--count", "4", "--steps", "2",
               "--out", str(out), stack=shared_stack)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"saved {out} (264×264 px" in done.stdout and "clip:1" in done.stdout
    # 8 px samples make a 22 px grid; the CLI asks for it scaled to at least 256 px.
    assert Image.open(out).size == (264, 264)


def test_preview_scale_draws_the_grid_n_times_larger_or_at_its_own_size(
    shared_stack, model, tmp_path
):
    args = ("preview", "clip", "--labels", "1,3", "--count", "4", "--steps", "2", "--json")
    sizes = {}
    for scale in ("1", "5"):
        out = tmp_path / f"x{scale}.png"
        done = cli(*args, "--scale", scale, "--out", str(out), stack=shared_stack)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        sizes[scale] = Image.open(out).size
        assert (report["width"], report["height"]) == sizes[scale]
    assert sizes == {"1": (22, 22), "5": (110, 110)}
    bad = cli(*args, "--scale", "0", "--out", str(tmp_path / "no.png"), stack=shared_stack)
    assert bad.returncode == 2 and "--scale" in bad.stderr


def test_preview_json_reports_the_file_and_the_version(shared_stack, model, tmp_path):
    done = cli("preview", "clip:1", "--json", "--steps", "2", "--out", str(tmp_path / "p.png"),
               stack=shared_stack)  # fmt: skip
    report = json.loads(done.stdout)
    assert report["model_version"] == "clip:1" and report["bytes"] > 0


def test_preview_of_an_unknown_class_is_an_api_error_exit_3(shared_stack, model, tmp_path):
    done = cli("preview", "clip", "--labels", "42", "--out", str(tmp_path / "x.png"),
               stack=shared_stack)  # fmt: skip
    assert done.returncode == 3
    assert "labels" in one_line_error(done)
    assert not (tmp_path / "x.png").exists()


def test_alias_set_then_models_ls_and_versions_show_it(shared_stack, model):
    done = cli("models", "alias", "set", "clip", "prod", "1", stack=shared_stack)
    assert done.returncode == 0, done.stderr
    assert "clip@prod → version 1" in done.stdout
    listed = cli("models", "ls", stack=shared_stack).stdout
    assert any(line.startswith("clip ") and "prod→1" in line for line in listed.splitlines())
    versions = json.loads(cli("models", "versions", "clip", "--json", stack=shared_stack).stdout)
    assert versions[0]["aliases"] == ["prod"]
    aliases = json.loads(cli("models", "aliases", "clip", "--json", stack=shared_stack).stdout)
    assert aliases["moves"][0]["to_version"] == 1


def test_models_with_a_stray_word_is_a_usage_error(shared_stack):
    done = cli("models", "alias", "set", "clip", "prod", stack=shared_stack)
    assert done.returncode == 2
    assert "usage" in one_line_error(done)


def test_logs_print_every_training_step_then_follow_ends_with_the_status(shared_stack, model):
    done = cli("jobs", "logs", model, stack=shared_stack)
    lines = done.stdout.splitlines()
    assert lines[0] == f"{model[:8]} train succeeded stage train step 4/4"
    assert [line.split()[1] for line in lines[1:]] == ["1", "2", "3", "4"]
    assert "loss=" in lines[1] and "grad_norm=" in lines[1]
    followed = cli("jobs", "logs", model, "-f", "--every", "2", "--json", stack=shared_stack)
    assert followed.returncode == 0
    assert [json.loads(line)["step"] for line in followed.stdout.splitlines()] == [2, 4]


def test_logs_follow_exits_4_when_the_job_is_canceled(shared_stack):
    job_id = submit(shared_stack, {**TINY_TRAIN, "config": {**TINY_TRAIN["config"],
                                                            "max_steps": 100_000}})  # fmt: skip
    cli("jobs", "cancel", job_id, stack=shared_stack)
    done = cli("jobs", "logs", job_id, "-f", "--poll", "0.2", stack=shared_stack)
    assert done.returncode == 4
    assert "canceled" in done.stdout
