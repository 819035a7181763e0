"""What a txt2img request may say, checked at the edge before anything is written."""

import pytest
from pydantic import ValidationError

from core.jobs.schemas import SCHEDULERS, Txt2ImgJobIn, parse_job
from worker.pipelines import SCHEDULER_CLASSES

BASE = {"kind": "txt2img", "model": "sd", "count_per_class": 2}


def test_prompts_of_a_class_are_its_own_then_the_templates_filled_in():
    job = parse_job(
        {**BASE, "prompts": {"stop sign": ["a red {class}"]}, "templates": ["a photo of a {class}"]}
    )
    assert isinstance(job, Txt2ImgJobIn)
    assert job.prompts_of("stop sign") == ["a red stop sign", "a photo of a stop sign"]


def test_a_class_with_no_prompt_and_no_template_is_refused():
    with pytest.raises(ValidationError, match="class 'yield' has no prompt"):
        parse_job({**BASE, "prompts": {"stop": ["a stop sign"], "yield": []}})


def test_a_template_without_the_class_placeholder_is_refused():
    with pytest.raises(ValidationError, match="placeholder"):
        parse_job({**BASE, "prompts": {"stop": []}, "templates": ["a road sign"]})


@pytest.mark.parametrize("name", ["a/b", "../x", "", " lead", "trail.", "x" * 101])
def test_class_names_must_be_safe_folder_names(name):
    with pytest.raises(ValidationError):
        parse_job({**BASE, "prompts": {name: ["p"]}})


def test_negative_prompt_without_guidance_is_refused_not_ignored():
    with pytest.raises(ValidationError, match="negative_prompt"):
        parse_job({**BASE, "prompts": {"a": ["p"]}, "negative_prompt": "n", "guidance_scale": 1})


def test_every_scheduler_name_maps_to_a_diffusers_scheduler():
    import diffusers

    assert set(SCHEDULERS) == set(SCHEDULER_CLASSES)
    assert all(hasattr(diffusers, name) for name in SCHEDULER_CLASSES.values())
