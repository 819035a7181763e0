"""Evaluate jobs: synthetic images (sampled now from a model version, or read back from a
finished generate job) against a reference split; the outcome is report.json and a
self-contained report.html, and the headline figures to attach to the model version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from core import catalog
from core.artifacts import service as artifacts
from core.curves import service as curves
from core.datasets import lookup as datasets
from core.db import session_scope
from core.errors import InvalidRequest
from core.jobs import sources
from core.jobs.orm import Job
from core.jobs.schemas import EvaluateConfig, EvaluateJobIn
from core.jobs.states import JobKind
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from models.metrics.classifier import ClassifierConfig
from models.metrics.evaluate import EvaluationConfig, SyntheticSource, evaluate
from models.metrics.privacy import PrivacyInputs
from models.metrics.report import GeneratorInfo
from models.metrics.utility import DataDescription, UtilityConfig
from worker import formats, metrics_cache
from worker.context import JobContext
from worker.datasets import load as dataset_loader
from worker.lineage import code_version
from worker.outcome import Evaluation, File, Outcome
from worker.sampling import label_plan, shards
from worker.versions import get_version, load_version

FEATURE_SPACE_NAMES = {
    "inception": "Inception-v3 pool3 (FID)",
    "classifier": "reference dataset classifier (FD, not FID)",
}
Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


def run(ctx: JobContext[EvaluateJobIn]) -> Outcome:
    request = ctx.request
    name, split = catalog.parse_dataset_ref(request.reference, default_split="test")
    cfg = request.config
    features, features_note = _feature_space(ctx, cfg)

    # Jobs queued before the default was resolved at submit stored no list.
    metrics = list(request.metrics or catalog.DEFAULT_METRICS)
    engine: Any = None
    trained: Any = None
    if request.source_job:
        # The images exist: the model is loaded only for a white-box membership attack.
        version = get_version(ctx, ctx.job.model_version_id)
        if "membership_inference" in metrics and version.engine in catalog.ENGINES:
            version, engine, trained = load_version(ctx, ctx.job.model_version_id)
        batches, count, kind = _from_generate_job(ctx, request.source_job, name, request.count)
        source_name = f"{kind} job {request.source_job}"
    else:
        version, engine, trained = load_version(ctx, ctx.job.model_version_id)
        assert request.count is not None  # noqa: S101 - the schema fills it in with model
        count = request.count
        options = cfg.sample_config.options()
        plan = label_plan(
            None, count, trained.num_classes, bool(version.spec.get("conditional", True))
        )
        batches = _sampled(ctx, engine, trained, plan, count, request.seed, options)
        source_name = f"{version.name}:{version.version}"

    epochs: dict[str, Any] = {"epochs": cfg.classifier_epochs} if cfg.classifier_epochs else {}
    classifier = ClassifierConfig(
        arch="resnet18" if cfg.classifier == "resnet18" else "small_cnn", **epochs
    )
    config = EvaluationConfig(
        utility=UtilityConfig(subset_sizes=tuple(cfg.subset_sizes), classifier=classifier),
    )
    cache_dir = ctx.settings.work_dir / "metrics-cache"
    metrics_cache.sync_down(ctx.storage, cache_dir)
    report = evaluate(
        synthetic=SyntheticSource(batches=batches, count=count),
        reference=f"{name}:{split}",
        metrics=metrics,
        generator=_generator_info(ctx, version, source_name),
        cache_dir=cache_dir,
        seeds=cfg.seeds,
        features=features,
        inception_weights=ctx.settings.inception_weights,
        config=config,
        code_version=code_version(),
        progress=lambda stage, done, total: _progress(ctx, stage, done, total),
        should_stop=ctx.should_stop,
        load_dataset=lambda n, s, image_size: dataset_loader.load(
            ctx, n, s, image_size, field="reference"
        ),
        privacy_inputs=_privacy_inputs(ctx, version, cfg, metrics, engine, trained),
        privacy_note=_privacy_note(ctx, version, cfg, metrics),
        features_note=features_note,
    )
    metrics_cache.sync_up(ctx.storage, cache_dir)
    with session_scope(ctx.settings.database_url) as session:  # uploads by name, id beside
        report.dataset_names = datasets.names_in(
            session=session, tenant_id=ctx.job.tenant_id, text=report.to_json()
        )

    body = report.to_dict()
    files = [
        File("report.json", report.to_json().encode(), "application/json"),
        File("report.html", report.to_html().encode(), "text/html"),
    ]
    summary = {
        "job_id": ctx.job.id,
        "reference": f"{name}:{split}",
        "synthetic_count": count,
        "features": features,
        "feature_space": FEATURE_SPACE_NAMES[features],
        "features_note": features_note,
        "metrics": {
            m["label"]: {
                k: m.get(k)
                for k in ("value", "std", "interval", "floor", "floor_interval", "unit", "features")
            }
            for m in body.get("metrics", [])
        },
    }
    if body.get("classifier_utility"):
        summary["classifier_utility"] = body["classifier_utility"]
    summary["privacy"] = _privacy_summary(body)

    return Outcome(
        result={"summary": summary, "report": "report.html"},
        files=files,
        register=Evaluation(version.id, {f"evaluation {name}:{split}": summary}),
    )


def _feature_space(ctx: JobContext, cfg: EvaluateConfig) -> tuple[str, str]:
    """The space the distances are computed in and how it was chosen, said in the summary
    and the report. Submit resolves "auto" (``features_auto`` marks it); a job queued
    before "auto" existed stored no choice and ran in Inception-v3 features."""
    features: str = cfg.features
    weights = ctx.settings.inception_weights
    has_weights = weights is not None and weights.is_file()
    if features == "auto":  # not resolved at submit (a service-made job): resolve here
        features, auto = ("inception" if has_weights else "classifier"), True
    else:
        auto = cfg.features_auto
    if not auto:
        return features, f'features "{features}", as the request asked'
    if features == "inception":
        return features, (
            'features "auto" (the default) chose Inception-v3: this server has its weights'
        )
    return features, (
        'features "auto" (the default) chose the reference dataset\'s classifier: this server '
        "has no Inception-v3 weights (SYNTHGEN_INCEPTION_WEIGHTS), so distances are FD, not FID"
    )


def _training_set(version: ModelVersion, cfg: EvaluateConfig) -> str | None:
    """The model's training set, "name:split": its lineage's, else the request's."""
    known = model_versions.training_set(version) or cfg.train_reference
    if known is None:
        return None
    name, split = catalog.parse_dataset_ref(known, default_split="train")
    return f"{name}:{split}"


def _privacy_inputs(
    ctx: JobContext,
    version: ModelVersion,
    cfg: EvaluateConfig,
    metrics: list[str],
    engine: Any,
    trained: Any,
) -> PrivacyInputs | None:
    """The training set and held-out split the privacy metrics compare against (both
    known at submit, or the metrics were refused), the engine's white-box attack when it
    has one, and the model's differential-privacy record."""
    train = _training_set(version, cfg)
    if train is None or not set(metrics) & set(catalog.PRIVACY_METRICS):
        return None
    name, _, split = train.partition(":")
    white_box = None
    if engine is not None and engine.white_box_attack:
        # The attack's own noise draws are fixed (seed 0): a model always scores the same.
        def white_box(images: torch.Tensor, labels: torch.Tensor) -> Any:
            return engine.membership_scores(
                trained, images, labels, seed=0, should_stop=ctx.should_stop
            )

    return PrivacyInputs(
        train=train,
        holdout=f"{name}:{catalog.held_out_split(split)}",
        white_box=white_box,
        white_box_name=engine.white_box_attack if white_box is not None else "",
        differential_privacy=(version.lineage or {}).get("privacy"),
        sliced=_sliced(version),
    )


def _sliced(version: ModelVersion) -> dict[str, Any] | None:
    """The seeded slice of its training split keep-best held out of the optimiser, from
    the version's lineage; None when it held out another split, or nothing."""
    held_out = ((version.lineage or {}).get("selection") or {}).get("held_out") or {}
    return held_out if held_out.get("source") == "slice" else None


def _privacy_note(
    ctx: JobContext, version: ModelVersion, cfg: EvaluateConfig, metrics: list[str]
) -> str:
    """What the report says when the privacy audit did not run, and why (the reasons the
    submit left it out of a default)."""
    if set(metrics) & set(catalog.PRIVACY_METRICS):
        return ""
    train = _training_set(version, cfg)
    if train is None:
        return (
            f"Not run: the training set of {version.name}:{version.version} is unknown (an "
            "imported model), so there is nothing to audit against. Set "
            "config.train_reference to the dataset it was trained on to audit it."
        )
    with session_scope(ctx.settings.database_url) as session:
        blocker = sources.audit_blocker(
            session=session, tenant_id=ctx.job.tenant_id, train_ref=train
        )
    if blocker is not None:
        return f"Not run: {blocker}."
    return (
        "Not asked: add memorization and membership_inference to metrics (or leave metrics "
        "out) to audit this model against its training set."
    )


def _privacy_summary(body: dict[str, Any]) -> dict[str, Any]:
    """The audit's headline for the model version and the job's result: the copy fraction
    (the headline criterion, in pixels) and each attack's AUC and TPR at 1 % FPR, each
    with its interval and floor; or why there is none."""
    audit = body.get("privacy")
    if not audit:
        return {"audited": False, "note": body.get("privacy_note")}
    out: dict[str, Any] = {"audited": True, "training_set": audit["training_set"]}
    pixels = (audit.get("memorization") or {}).get(audit["headline_space"])
    if pixels:
        copies = pixels["figures"]["copy_fraction"]
        out["copy_fraction"] = copies["value"]
        out["copy_fraction_floor"] = copies["floor"]
        out["criterion"] = pixels["headline"]
        out["space"] = pixels["space"]
    if audit.get("membership_inference"):
        out["membership_inference"] = [
            {k: a[k] for k in ("name", "auc", "tpr_at_fpr", "fpr")}
            for a in audit["membership_inference"]
        ]
    if audit.get("differential_privacy"):
        out["differential_privacy"] = audit["differential_privacy"]
    return out


def _progress(ctx: JobContext, stage: str, done: int, total: int) -> None:
    if ctx.progress.stage != stage:
        ctx.progress.set_stage(stage)
    ctx.progress(done, total)


def _sampled(
    ctx: JobContext,
    engine: Any,
    trained: Any,
    plan: np.ndarray | None,
    count: int,
    seed: int,
    options: dict[str, Any],
) -> Batches:
    for shard in shards(
        count, ctx.settings.shard_size, seed=seed, plan=plan, should_stop=ctx.should_stop
    ):
        labels = None if shard.labels is None else torch.from_numpy(shard.labels)
        images = engine.sample(
            trained, shard.size, labels, seed=shard.seed, should_stop=ctx.should_stop, **options
        )
        yield images, labels if labels is not None else torch.full((shard.size,), -1)


def _from_generate_job(
    ctx: JobContext, job_id: str, reference: str, count: int | None
) -> tuple[Batches, int, str]:
    """The first ``count`` images (all when None) of a finished generate or txt2img job,
    in the order it made them, whatever format it wrote; and the job's kind. A txt2img
    job's labels are its own class order: they become the reference's, matched by name."""
    with session_scope(ctx.settings.database_url) as session:
        source = session.get(Job, job_id)
        if source is not None:
            session.expunge(source)
    if source is None:
        raise InvalidRequest("source_job no longer exists", field="source_job")
    result = source.result or {}
    class_names = list(result.get("class_names") or [])
    arrays, total = formats.read(
        result["output_format"],
        formats.Source(
            ctx.storage,
            artifacts.prefix_of(job_id),
            ctx.workdir,
            class_names,
            count,
            ctx.settings.shard_size,
        ),
    )
    batches = ((torch.from_numpy(images), torch.from_numpy(labels)) for images, labels in arrays)
    if source.kind == JobKind.txt2img:
        known = dataset_loader.class_names(ctx, reference)
        missing = [c for c in class_names if c not in known]
        if missing:
            raise InvalidRequest(
                f"reference: {reference} has no class {missing[0]!r}; a txt2img job's "
                "classes are matched to the reference's by name",
                field="reference",
            )
        mapping = torch.tensor([known.index(c) for c in class_names], dtype=torch.int64)
        batches = ((images, mapping[labels]) for images, labels in batches)
    return batches, total, str(source.kind)


def _generator_info(ctx: JobContext, version: ModelVersion, source_name: str) -> GeneratorInfo:
    dataset, _, split = version.dataset.partition(":")
    curve: list[dict[str, float]] = []
    train_job = version.train_job_id
    key = artifacts.key_of(train_job, "metrics.jsonl") if train_job else None
    if key is not None and ctx.storage.exists(key):
        lines = ctx.storage.get_bytes(key).decode().splitlines()
        curve = curves.thinned([json.loads(line) for line in lines if line])
    return GeneratorInfo(
        name=source_name,
        engine=version.engine,
        training_data=DataDescription(
            dataset=dataset,
            split=split or "train",
            count=int(version.spec.get("train_examples", 0)),
        ),
        version_id=version.id,
        config=version.config,
        training_curve=curve,
    )
