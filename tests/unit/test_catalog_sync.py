"""What the API validates against (core/, no torch) equals what models/ implements."""

from typing import get_args

import pytest

from core import catalog
from core.jobs import engine_configs, schemas
from models import datasets, engines
from models.engines import accel, ddpm, ddpm_solvers, ebm, gan
from models.metrics.evaluate import DISTANCES, FEATURE_SPACES, METRICS, PRIVACY

EDGE = {
    "ddpm": (engine_configs.DDPMConfig, ddpm.DDPMConfig, ddpm.ENGINE.sample_options),
    "gan": (engine_configs.GANConfig, gan.GANConfig, gan.ENGINE.sample_options),
    "ebm": (engine_configs.EBMConfig, ebm.EBMConfig, ebm.ENGINE.sample_options),
}
# Sampling knobs the worker sets itself; users do not send them.
WORKER_OPTIONS = {"batch_size", "planned_images", "progress", "should_stop"}


def test_engines_are_the_same_set():
    assert sorted(catalog.ENGINES) == engines.names() == sorted(EDGE)


@pytest.mark.parametrize("engine", sorted(EDGE))
def test_submit_validates_with_the_class_the_engine_runs_with(engine):
    edge, engine_config, _ = EDGE[engine]
    assert edge is engine_config
    assert engine_configs.CONFIGS[engine] is engine_config


@pytest.mark.parametrize("engine", sorted(EDGE))
def test_sample_options_match_the_engine(engine):
    _, _, options = EDGE[engine]
    assert catalog.SAMPLE_OPTIONS[engine] == set(options) - WORKER_OPTIONS


def test_ddpm_samplers_and_precisions_match():
    assert catalog.DDPM_SAMPLERS == ddpm_solvers.SAMPLERS
    assert get_args(schemas.SamplerName) == catalog.DDPM_SAMPLERS
    assert set(get_args(schemas.SolverName)) == set(ddpm_solvers.SOLVERS)
    precision = schemas.SampleConfig.model_fields["precision"].annotation
    assert get_args(get_args(precision)[0]) == catalog.SAMPLE_PRECISIONS == accel.PRECISIONS


def test_datasets_and_splits_match():
    assert catalog.DATASET_SPLITS == dict(datasets.BUILTIN_SPLITS)
    assert set(catalog.DEFAULT_IMAGE_SIZE) == set(catalog.DATASET_SPLITS)


def test_metrics_match():
    assert tuple(catalog.METRICS) == tuple(METRICS)


def test_feature_spaces_and_distance_metrics_match():
    assert catalog.FEATURE_SPACES == FEATURE_SPACES
    assert catalog.DISTANCE_METRICS == DISTANCES


def test_privacy_metrics_match():
    assert frozenset(catalog.PRIVACY_METRICS) == PRIVACY
    assert set(catalog.DEFAULT_METRICS) <= set(catalog.METRICS)
