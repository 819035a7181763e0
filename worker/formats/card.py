"""``README.md``: the Hugging Face dataset card of a generated set. YAML front matter
(license, annotations_creators, source_datasets, task_categories, size_categories, tags;
for parquet also ``configs`` and ``dataset_info``, so ``load_dataset`` on the folder finds
the shards and their features), then the provenance a careful team needs before using
synthetic data: the model and its lineage, how the images were sampled, how many of each
class, and the evaluation and privacy figures of the evaluate jobs already run on the
model version (or that there are none)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from worker.formats.description import Description

SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
]

LOADING = {
    "parquet": (
        "from datasets import load_dataset\n"
        'ds = load_dataset("parquet", data_files="data/*.parquet", split="train")\n'
        'image, label = ds[0]["image"], ds.features["label"].int2str(ds[0]["label"])'
    ),
    "webdataset": (
        "import webdataset as wds\n"
        'ds = wds.WebDataset("{location}", shardshuffle=False).decode("pil")\n'
        'image, label, meta = next(iter(ds.to_tuple("png", "cls", "json")))'
    ),
    "npz": (
        "import numpy as np\n"
        'data = np.load("images.npz")\n'
        'images, labels, names = data["images"], data["labels"], data["class_names"]'
    ),
    "imagefolder": (
        "from torchvision.datasets import ImageFolder  # after: unzip images.zip -d images\n"
        'ds = ImageFolder("images")\n'
        "image, label = ds[0]"
    ),
    "png": (
        "import csv; from PIL import Image\n"
        'rows = list(csv.DictReader(open("labels.csv")))\n'
        'image, label = Image.open(rows[0]["file"]), int(rows[0]["label"])'
    ),
}


def size_category(count: int) -> str:
    for bound, name in SIZE_CATEGORIES:
        if count < bound:
            return name
    return "n>10M"


def front_matter(d: Description) -> dict[str, Any]:
    license_id, _ = d.license
    meta: dict[str, Any] = {
        "license": license_id,
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        "source_datasets": [d.training_set or "original"],
        "task_categories": ["image-classification"],
        "size_categories": [size_category(d.count)],
        "tags": ["synthetic", "synthgen", str(d.model.get("engine"))],
        "pretty_name": f"{d.model['name']}:{d.model['version']} synthetic images",
    }
    if d.output_format == "parquet":
        meta["configs"] = [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": "data/train-*.parquet"}],
            }
        ]
        meta["dataset_info"] = {
            "features": [
                {"name": "image", "dtype": "image"},
                {
                    "name": "label",
                    "dtype": {
                        "class_label": {"names": {str(i): n for i, n in enumerate(d.class_names)}}
                    },
                },
                {"name": "index", "dtype": "int64"},
                {"name": "seed", "dtype": "int64"},
                {"name": "model_version", "dtype": "string"},
            ],
            "splits": [{"name": "train", "num_examples": d.count}],
        }
    return meta


def _figure(metric: dict[str, Any]) -> str:
    value = metric.get("value")
    if value is None:
        return "-"
    text = f"{value:.4g}"
    if metric.get("std") is not None:
        text += f" ± {metric['std']:.2g}"
    interval = metric.get("interval")
    if interval:
        text += f" (95 % interval {interval[0]:.4g} to {interval[1]:.4g})"
    return text


def _evaluations(d: Description) -> list[str]:
    if not d.evaluations:
        return [
            "No evaluate job has been run on this model version yet: the quality of these "
            "images is unmeasured. Submit an evaluate job with this version, or with "
            f"`source_job: {d.job_id}`, to measure it.",
        ]
    lines: list[str] = []
    for reference, summary in d.evaluations.items():
        lines += [
            f"### Against {reference} (evaluate job {summary.get('job_id', '?')})",
            "",
            f"{summary.get('synthetic_count', '?')} synthetic images; distances in "
            f"{summary.get('feature_space', summary.get('features', '?'))}.",
            "",
            "| metric | value | real-vs-real floor |",
            "|---|---|---|",
        ]
        for label, metric in (summary.get("metrics") or {}).items():
            floor = metric.get("floor")
            floor_text = "-" if floor is None else f"{floor:.4g}"
            unit = f" {metric['unit']}" if metric.get("unit") else ""
            lines.append(f"| {label}{unit} | {_figure(metric)} | {floor_text} |")
        utility = summary.get("classifier_utility")
        if utility:
            lines += [
                "",
                f"Classifier utility (train on synthetic, test on real): `{json.dumps(utility)}`",
            ]
        lines.append("")
    return lines


def _privacy(d: Description) -> list[str]:
    dp = d.privacy
    if dp:
        lines = [
            f"The model was trained with differential privacy: ε = {dp.get('epsilon')}, "
            f"δ = {dp.get('delta')} ({dp.get('accountant', 'accountant')} accountant, noise "
            f"multiplier {dp.get('noise_multiplier')}, {dp.get('steps')} steps, clipping "
            f"norm {dp.get('max_grad_norm')}). These images are post-processing of its "
            "weights and carry the same guarantee.",
        ]
    else:
        lines = [
            "The model was not trained with differential privacy: these images carry no "
            "formal privacy guarantee about its training data.",
        ]
    audits = [(ref, s.get("privacy") or {}) for ref, s in d.evaluations.items()]
    audited = [(ref, a) for ref, a in audits if a.get("audited")]
    lines.append("")
    if not audited:
        notes = [a.get("note") for _, a in audits if a.get("note")]
        lines.append(
            "No privacy audit (memorization, membership inference) has been run on this model "
            "version." + (f" {notes[0]}" if notes else "")
        )
        return lines
    for ref, audit in audited:
        lines.append(f"Audit against {audit.get('training_set', '?')} (evaluate on {ref}):")
        lines.append("")
        if "copy_fraction" in audit:
            lines.append(
                f"- near-copies of training images ({audit.get('criterion', '')}, "
                f"{audit.get('space', 'pixels')}): {audit['copy_fraction']:.4g} of the images "
                f"(real-vs-real floor {audit.get('copy_fraction_floor')})"
            )
        for attack in audit.get("membership_inference") or []:
            lines.append(
                f"- membership inference, {attack.get('name')}: AUC {attack.get('auc')}, "
                f"TPR {attack.get('tpr_at_fpr')} at {attack.get('fpr')} FPR"
            )
        lines.append("")
    return lines


def _lineage(d: Description) -> list[str]:
    model, lineage = d.model, d.lineage or {}
    dataset = lineage.get("dataset") or {}
    rows = [
        ("model version", f"{model['name']}:{model['version']} (`{model['id']}`)"),
        ("engine", str(model.get("engine"))),
        ("created by", f"{lineage.get('created_by', 'train')} job `{model.get('train_job_id')}`"),
        ("training data", str(dataset.get("ref") or model.get("dataset") or "unknown")),
    ]
    if dataset.get("sha256"):
        rows.append(("training data sha256", f"`{dataset['sha256']}`"))
    parent = lineage.get("parent")
    if parent:
        rows.append(("fine-tuned from", f"{parent.get('name')}:{parent.get('version')}"))
    if lineage.get("import"):
        rows.append(("imported from", str(lineage["import"].get("source"))))
    rows.append(("code", str(lineage.get("code_version") or "unknown")))
    rows.append(("this set made by", f"{d.kind} job `{d.job_id}`, {d.code_version}"))
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    if model.get("config"):
        lines += [
            "",
            "Training configuration:",
            "",
            "```json",
            json.dumps(model["config"], indent=1),
            "```",
        ]
    return lines


def render(d: Description) -> str:
    meta = yaml.safe_dump(front_matter(d), sort_keys=False, allow_unicode=True)
    model = d.model
    license_id, license_why = d.license
    c, h, w = d.image_shape
    loading = LOADING[d.output_format].format(location=d.location)
    sampling = json.dumps(d.sampling, indent=1, sort_keys=True)
    lines = [
        "---",
        meta.rstrip(),
        "---",
        "",
        f"# {model['name']}:{model['version']} synthetic images",
        "",
        f"{d.count} machine-generated {w}x{h} images ({'grayscale' if c == 1 else 'RGB'}) of "
        f"{len(d.class_names)} classes, sampled by synthgen {d.kind} job `{d.job_id}` on "
        f"{d.created_at.date().isoformat()} from model version {model['name']}:"
        f"{model['version']} ({model.get('engine')}). No image here is a real photograph "
        "or a training image; labels are the classes the model was asked for.",
        "",
        "## Files",
        "",
        f"Format `{d.output_format}`: the images are in `{d.location}`. `manifest.csv` lists "
        "every image (index, file, place in it, label, class name, SHA-256); "
        "`croissant.json` is the MLCommons Croissant record; `grid.png` a preview.",
        "",
        "```python",
        loading,
        "```",
        "",
        "## Model and lineage",
        "",
        *_lineage(d),
        "",
        "## Sampling",
        "",
        "The same request (model version, seed, count, labels and options below) makes the "
        "same images. Each image's `seed` (a column of parquet, in the .json of webdataset) "
        "is the seed it was sampled with.",
        "",
        "```json",
        sampling,
        "```",
        "",
        "## Classes",
        "",
        "| label | class | images |",
        "|---|---|---|",
        *(
            f"| {i} | {name} | {n} |"
            for i, (name, n) in enumerate(zip(d.class_names, d.counts, strict=True))
        ),
        "",
        "## Evaluation",
        "",
        *_evaluations(d),
        "",
        "## Privacy",
        "",
        *_privacy(d),
        "",
        "## License",
        "",
        f"`{license_id}`: {license_why}.",
        "",
    ]
    return "\n".join(lines)
