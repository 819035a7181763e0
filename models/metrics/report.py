"""The evaluation report: a JSON-ready dict and a self-contained HTML page.

The HTML has no external assets (figures are base64 PNG data URIs or inline SVG), so it
can be stored as one object and opened offline.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Protocol

from models.metrics.coverage import CoverageResult
from models.metrics.utility import DataDescription, UtilityResult

_SPACES = {
    "inception": "Inception-v3 features (FID, the standard)",
    "classifier": "the reference dataset's classifier features (FD, not FID)",
}

REPORT_FORMAT_VERSION = 3
"""2: distances in one chosen feature space (``feature_space``), units, no ``skipped``.
3: the privacy audit (``privacy``, ``privacy_note``) and 95 % intervals on metrics."""

# An uploaded dataset's id (core/catalog.py UPLOAD_ID_PATTERN) and the split after it.
_UPLOAD_REF = re.compile(r"\b(ds_[0-9a-f]{32})(:[a-z]+)?")


@dataclass(frozen=True)
class GeneratorInfo:
    """The model version under evaluation, as the caller knows it."""

    name: str
    """How the user named it, e.g. "digits-ddpm:3" or a generate job id."""
    engine: str
    training_data: DataDescription
    version_id: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    training_curve: Sequence[Mapping[str, float]] = ()
    """[{"step": 100, "loss": 0.12, ...}, ...] as recorded during training."""


@dataclass(frozen=True)
class MetricValue:
    key: str
    """Stable id: "fd", "kid", "precision", "recall", "inception_score"."""
    label: str
    """What the report prints, naming the features: "FID (Inception-v3)"."""
    features: str
    value: float
    std: float | None = None
    floor: float | None = None
    """The same metric between two real splits (see :attr:`EvaluationReport.floor_pair`)."""
    floor_std: float | None = None
    better: str = "lower"
    unit: str = ""
    """What the number is, e.g. KID's "MMD², raw (papers often print KID × 10³)"."""
    detail: str = ""
    """How it was computed, e.g. "100 subsets of 1000"."""
    interval: tuple[float, float] | None = None
    """A 95 % interval of ``value`` (the privacy figures: bootstrap), when computed."""
    floor_interval: tuple[float, float] | None = None


class Section(Protocol):
    """A report section computed by its own module (the privacy audit)."""

    def to_dict(self) -> dict[str, Any]: ...

    def to_html(self) -> str: ...


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    tag: str
    dim: int
    standard: bool
    detail: str = ""


@dataclass
class Figures:
    sample_grid_png: bytes | None = None
    tsne_png: bytes | None = None
    tsne_features: str = ""
    training_curves_svg: str = ""


@dataclass
class EvaluationReport:
    reference: str
    """The split synthetic images are compared with, e.g. "digits:test"."""
    floor_pair: str
    """The two real splits behind every floor, e.g. "digits:train (1438) and digits:test (359)"."""
    synthetic_count: int
    reference_count: int
    kept_per_set: int
    """Items per set that KID, precision/recall and t-SNE used (a seeded uniform sample)."""
    seeds: list[int]
    metrics: list[MetricValue]
    feature_space: str
    """Where FD, KID and precision/recall were computed: "inception" or "classifier"."""
    features_note: str
    """How that space was chosen, e.g. the service's "auto" without Inception weights."""
    features: list[FeatureInfo]
    reference_classifier: dict[str, Any]
    generator: GeneratorInfo
    code_version: str
    config: dict[str, Any]
    coverage: CoverageResult | None = None
    utility: UtilityResult | None = None
    figures: Figures = field(default_factory=Figures)
    privacy: Section | None = None
    privacy_note: str = ""
    """Why the privacy audit did not run, when it did not."""
    dataset_names: dict[str, str] = field(default_factory=dict)
    """Uploaded datasets' names by id: the HTML shows "signs:test (ds_…)" where the
    figures say "ds_…:test", and report.json lists them under ``datasets``."""

    def to_dict(self) -> dict[str, Any]:
        """Everything but the figures, as JSON types (report.json)."""
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "reference": self.reference,
            "floor_pair": self.floor_pair,
            "counts": {
                "synthetic": self.synthetic_count,
                "reference": self.reference_count,
                "kept_per_set": self.kept_per_set,
            },
            "seeds": self.seeds,
            "feature_space": self.feature_space,
            "features_note": self.features_note or None,
            "metrics": [asdict(m) for m in self.metrics],
            "features": [asdict(f) for f in self.features],
            "reference_classifier": self.reference_classifier,
            "class_coverage": asdict(self.coverage) if self.coverage else None,
            "classifier_utility": _utility_dict(self.utility) if self.utility else None,
            "generator": {
                "name": self.generator.name,
                "engine": self.generator.engine,
                "version_id": self.generator.version_id,
                "training_data": asdict(self.generator.training_data),
                "config": dict(self.generator.config),
            },
            "privacy": self.privacy.to_dict() if self.privacy else None,
            "privacy_note": self.privacy_note or None,
            "datasets": [{"id": k, "name": v} for k, v in sorted(self.dataset_names.items())],
            "code_version": self.code_version,
            "config": self.config,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def to_html(self) -> str:
        template = Template(resources.files(__package__).joinpath("report.html").read_text())
        g = self.generator
        version = f" (version {html.escape(g.version_id)})" if g.version_id else ""
        return self._named(
            template.substitute(
                title=html.escape(f"Evaluation of {g.name} against {self.reference}"),
                meta=(
                    f"{html.escape(g.engine)} model {html.escape(g.name)}{version}, trained on "
                    f"{html.escape(str(g.training_data))}. {self.synthetic_count} synthetic and "
                    f"{self.reference_count} reference images; seeds {self.seeds}. "
                    f"Distances in {_SPACES.get(self.feature_space, self.feature_space)}"
                    + (f" ({html.escape(self.features_note)})." if self.features_note else ".")
                ),
                floor_pair=html.escape(self.floor_pair),
                metrics_table=self._metrics_html(),
                coverage=self._coverage_html(),
                utility=self._utility_html(),
                grid=_figure(
                    self.figures.sample_grid_png,
                    "Synthetic samples, one row per conditioned class.",
                    "No samples were kept.",
                ),
                tsne=_figure(
                    self.figures.tsne_png,
                    f"t-SNE of {html.escape(self.figures.tsne_features)} features; blue real "
                    f"({html.escape(self.reference)}), orange synthetic.",
                    "t-SNE was not computed.",
                ),
                curves=self.figures.training_curves_svg
                or "<p>No training curve was recorded for this model version.</p>",
                provenance=self._provenance_html(),
                privacy=self.privacy.to_html()
                if self.privacy
                else f"<p>{html.escape(self.privacy_note or 'Not requested.')}</p>",
            )
        )

    def _named(self, page: str) -> str:
        """``page`` with each uploaded dataset's name where its id stood and the id beside
        it: a tenant knows its datasets by the names it gave them."""

        def named(found: re.Match[str]) -> str:
            name = self.dataset_names.get(found.group(1))
            if name is None:
                return found.group(0)
            return f"{html.escape(name)}{found.group(2) or ''} ({found.group(1)})"

        return _UPLOAD_REF.sub(named, page) if self.dataset_names else page

    def _metrics_html(self) -> str:
        if not self.metrics:
            return "<p>No distance metric was requested.</p>"
        rows = [
            "<tr><th>Metric</th><th>Synthetic vs reference</th><th>Real-vs-real floor</th>"
            "<th>Better</th><th>Features</th><th>How</th></tr>"
        ]
        for m in self.metrics:
            rows.append(
                f"<tr><td>{html.escape(m.label)}<br><span class='note'>{html.escape(m.unit)}"
                f"</span></td><td class='num'>{_pm(m.value, m.std, m.interval)}</td>"
                f"<td class='num'>{_pm(m.floor, m.floor_std, m.floor_interval)}</td>"
                f"<td>{html.escape(m.better)}</td>"
                f"<td>{html.escape(m.features)}</td><td>{html.escape(m.detail)}</td></tr>"
            )
        return "<table>" + "".join(rows) + "</table>"

    def _coverage_html(self) -> str:
        c = self.coverage
        if c is None:
            return "<p>Not requested.</p>"
        acc = self.reference_classifier.get("test_accuracy")
        head = (
            f"<p>Judged by the {html.escape(str(self.reference_classifier.get('name')))}, "
            f"whose accuracy on real test images is {_pct(acc)}. "
            f"Reference classes found among the samples: {_pct(c.classes_present)}.</p>"
        )
        if not c.per_class:
            return head + "<p>The samples carry no class condition.</p>"
        rows = "".join(
            f"<tr><td>{html.escape(r.name)}</td><td class='num'>{r.samples}</td>"
            f"<td class='num'>{_pct(r.recognised)}</td></tr>"
            for r in c.per_class
        )
        return (
            head + "<table><tr><th>Conditioned class</th><th>Samples</th>"
            "<th>Recognised as that class</th></tr>" + rows + "<tr><td><b>mean</b></td><td></td>"
            f"<td class='num'><b>{_pct(c.mean_recognised)}</b></td></tr></table>"
        )

    def _utility_html(self) -> str:
        u = self.utility
        if u is None:
            return "<p>Not requested.</p>"
        rows = "".join(
            f"<tr><td>{html.escape(r.setting)}</td><td class='num'>{r.real_images}</td>"
            f"<td class='num'>{r.synthetic_images}</td>"
            f"<td class='num'>{_pct(r.mean)} ± {_pct(r.std)}</td></tr>"
            for r in u.rows
        )
        gains = "".join(
            f"<tr><td>real {g.per_class}/class</td><td class='num'>{g.mean * 100:+.1f} ± "
            f"{g.std * 100:.1f} points</td></tr>"
            for g in u.gains
        )
        seen = "".join(f"<li>{html.escape(s)}</li>" for s in u.data_seen)
        return (
            f"<p>Accuracy on {html.escape(str(u.test))}; classifier: "
            f"{html.escape(u.classifier)}; mean ± std over seeds {u.seeds}.</p>"
            "<table><tr><th>Training data</th><th>Real images</th><th>Synthetic images</th>"
            f"<th>Test accuracy</th></tr>{rows}</table>"
            + (
                "<table><tr><th>Augmenting</th><th>Accuracy gain from synthetic data</th></tr>"
                f"{gains}</table>"
                if gains
                else ""
            )
            + f"<p><b>What real data each model saw</b></p><ul class='seen'>{seen}</ul>"
        )

    def _provenance_html(self) -> str:
        features = "".join(
            f"<li>{html.escape(f.name)} ({f.dim}-d): {html.escape(f.detail)}</li>"
            for f in self.features
        )
        evaluation = json.dumps(self.config, sort_keys=True)
        generator = json.dumps(dict(self.generator.config), sort_keys=True, default=str)
        return (
            f"<ul><li>Code version: <code>{html.escape(self.code_version)}</code></li>"
            f"<li>Feature extractors:<ul>{features}</ul></li>"
            f"<li>Evaluation config: <code>{html.escape(evaluation)}</code></li>"
            f"<li>Generator config: <code>{html.escape(generator)}</code></li></ul>"
        )


def _utility_dict(u: UtilityResult) -> dict[str, Any]:
    return {
        "test": asdict(u.test),
        "generator_data": asdict(u.generator_data),
        "classifier": u.classifier,
        "seeds": u.seeds,
        "rows": [{**asdict(r), "mean": r.mean, "std": r.std} for r in u.rows],
        "gains": [{**asdict(g), "mean": g.mean, "std": g.std} for g in u.gains],
        "data_seen": u.data_seen,
    }


def _figure(png: bytes | None, caption: str, missing: str) -> str:
    if png is None:
        return f"<p>{missing}</p>"
    data = base64.b64encode(png).decode("ascii")
    return (
        f"<figure><img alt='' src='data:image/png;base64,{data}'>"
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _pm(value: float | None, std: float | None, interval: tuple[float, float] | None = None) -> str:
    if value is None:
        return "—"
    if interval is not None:
        return f"{value:.4g} [{interval[0]:.3g}, {interval[1]:.3g}]"
    return f"{value:.4g} ± {std:.2g}" if std is not None else f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and paths as strings, for json.dumps."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
