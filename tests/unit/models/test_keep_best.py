"""Keep-best (models/engines/runtime/selection.py): a scored run registers its best
evaluation's weights, resumes with the best so far, stops early when told, scores a
model without labels by FD alone, and a ddpm run chooses its guidance scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import datasets, engines
from models.engines.base import Hooks, Scoring, Stopped
from models.engines.runtime import holdout
from models.engines.runtime.selection import better
from models.metrics.classifier import SmallCNN
from models.metrics.features import ClassifierFeatures
from models.metrics.heldout import HeldOutScore
from tests.unit.models.mean_engine import ENGINE as MEAN

BASE = {"max_steps": 25, "eval_every": 5, "checkpoint_every": 0, "seed": 3}


class Scripted:
    """A scorer whose FD follows a script, one value per evaluation: the run's quality
    as the test wants it to go (peaking mid-run, say)."""

    features = "scripted"

    def __init__(self, fds: list[float], count: int = 6) -> None:
        self.fds = list(fds)
        self.count = count
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        self.calls.append((images, labels))
        scores = {"fd": self.fds[len(self.calls) - 1]}
        if labels is not None:
            scores["label_agreement"] = 1.0
        return scores


def scripted(fds: list[float]) -> tuple[Scoring, list[Scripted]]:
    made: list[Scripted] = []

    def make(held_out: datasets.ImageDataset) -> Scripted:
        made.append(Scripted(fds))
        return made[-1]

    return Scoring(make_scorer=make), made


def means(trained) -> torch.Tensor:
    return trained.modules["net"].means.detach().clone()


def test_a_run_whose_quality_peaks_mid_run_keeps_the_peak(tiny_shapes):
    scoring, _ = scripted([5.0, 3.0, 1.0, 2.0, 4.0])  # best at the third evaluation
    best = MEAN.train(tiny_shapes, BASE, Hooks(scoring=scoring))
    # The same run stopped at step 15 (same held-out slice, so the same data order).
    at_peak = MEAN.train(
        tiny_shapes, {**BASE, "max_steps": 15, "keep": "last"}, Hooks(scoring=scripted([9] * 3)[0])
    )
    last = MEAN.train(tiny_shapes, {**BASE, "keep": "last"}, Hooks(scoring=scripted([9] * 5)[0]))

    assert torch.equal(means(best), means(at_peak))
    assert not torch.equal(means(best), means(last))
    report = best.selection
    assert report["chosen"] == {"step": 15, "fd": 1.0, "label_agreement": 1.0}
    assert report["last"]["step"] == 25 and report["last"]["fd"] == 4.0
    assert [e["step"] for e in report["evaluations"]] == [5, 10, 15, 20, 25]
    assert report["stopped_early"] is None


def test_the_held_out_slice_is_never_trained_on_and_is_said(tiny_shapes):
    scoring, made = scripted([1.0] * 5)
    seen: list[datasets.ImageDataset] = []
    make = scoring.make_scorer
    scoring.make_scorer = lambda held: (seen.append(held), make(held))[1]
    trained = MEAN.train(tiny_shapes, BASE, Hooks(scoring=scoring))
    where = trained.selection["held_out"]
    assert where == {
        "source": "slice",
        "split": "train",
        "count": 6,
        "of": 64,
        "seed": 3,
        "ref": "shapes:train",
    }
    kept, held, _ = holdout.held_out(tiny_shapes, None, 3)
    assert torch.equal(seen[0].images, held.images) and len(kept) == 58
    # Every held-out image is absent from what the optimiser trains on.
    flat = kept.images.flatten(1)
    assert all(not (flat == image.flatten()).all(1).any() for image in held.images)


def test_every_evaluation_draws_the_classes_in_turn(tiny_shapes):
    scoring, made = scripted([1.0] * 5)
    MEAN.train(tiny_shapes, BASE, Hooks(scoring=scoring))
    labels = [call[1] for call in made[0].calls]
    assert all(torch.equal(y, torch.arange(6) % 5) for y in labels) and len(labels) == 5


def test_scoring_leaves_the_training_run_as_it_was(tiny_shapes):
    scored = MEAN.train(
        tiny_shapes, {**BASE, "keep": "last"}, Hooks(scoring=scripted([1.0] * 5)[0])
    )
    kept, _, _ = holdout.held_out(tiny_shapes, None, 3)
    plain = MEAN.train(kept, {**BASE, "eval_every": 0})
    assert torch.equal(means(scored), means(plain))


def test_early_stopping_ends_the_run_after_patience_evaluations_and_says_so(tiny_shapes):
    scoring, _ = scripted([3.0, 1.0, 2.0, 2.5, 0.5])
    trained = MEAN.train(tiny_shapes, {**BASE, "early_stop_patience": 2}, Hooks(scoring=scoring))
    report = trained.selection
    assert trained.metrics["steps"] == 20
    assert report["stopped_early"] == {"step": 20, "reason": "2 evaluations without a better score"}
    assert report["chosen"]["step"] == 10 and report["last"]["step"] == 20


def test_resume_keeps_the_best_so_far_and_ends_as_an_uninterrupted_run(tiny_shapes, tmp_path):
    fds = [5.0, 1.0, 3.0, 4.0, 6.0]  # best at step 10, before the interruption
    config = {**BASE, "checkpoint_every": 5}
    whole = MEAN.train(tiny_shapes, config, Hooks(scoring=scripted(fds)[0]))

    saved: dict[int, Path] = {}

    def keep(step: int, directory: Path) -> None:
        target = tmp_path / f"step{step}"
        target.mkdir()
        for path in directory.iterdir():
            (target / path.name).write_bytes(path.read_bytes())
        saved[step] = target

    calls = {"n": 0}

    def stop_after_17() -> bool:
        calls["n"] += 1
        return calls["n"] > 17

    with pytest.raises(Stopped):
        MEAN.train(
            tiny_shapes,
            config,
            Hooks(scoring=scripted(fds)[0], checkpoint=keep, should_stop=stop_after_17),
        )
    assert max(saved) == 17  # after the best (step 10), before the last evaluations
    # The resumed run's scorer sees only the evaluations after the checkpoint.
    resumed_scoring, made = scripted(fds[3:])
    resumed = MEAN.train(
        tiny_shapes, config, Hooks(scoring=resumed_scoring, resume_from=saved[max(saved)])
    )
    assert len(made[0].calls) == 2
    assert torch.equal(means(resumed), means(whole))
    assert resumed.selection["chosen"]["step"] == 10
    assert resumed.selection["evaluations"] == whole.selection["evaluations"]


def test_a_model_without_labels_gets_fd_only(tiny_shapes):
    scoring, made = scripted([2.0, 1.0, 3.0, 4.0, 5.0])
    trained = MEAN.train(tiny_shapes, {**BASE, "conditional": False}, Hooks(scoring=scoring))
    assert all(labels is None for _, labels in made[0].calls)
    assert trained.selection["chosen"] == {"step": 10, "fd": 1.0}
    assert trained.selection["criterion"] == "lowest FD"


def test_held_out_score_measures_fd_and_label_agreement_in_classifier_features(tiny_shapes):
    torch.manual_seed(0)
    extractor = ClassifierFeatures(
        SmallCNN(3, 4, 8), dataset="shapes", image_shape=(3, 8, 8), num_classes=4, test_accuracy=0.0
    )
    score = HeldOutScore(extractor, tiny_shapes, count=32)
    same = score(tiny_shapes.images, None)
    assert set(same) == {"fd"} and same["fd"] == pytest.approx(0.0, abs=1e-3)
    noise = score(torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8), None)
    assert noise["fd"] > same["fd"] + 1e-3
    predicted = extractor.with_logits(tiny_shapes.images)[1].argmax(1)
    labelled = score(tiny_shapes.images, torch.as_tensor(predicted))
    assert labelled["label_agreement"] == 1.0
    assert score(tiny_shapes.images, torch.as_tensor((predicted + 1) % 4))["label_agreement"] == 0.0


@pytest.mark.parametrize(
    ("candidate", "best", "top", "wins"),
    [
        ({"fd": 1.0}, None, 0.0, True),
        ({"fd": 1.0}, {"fd": 2.0}, 0.0, True),
        ({"fd": 3.0}, {"fd": 2.0}, 0.0, False),
        # Within the tolerance of the run's best agreement, FD decides.
        ({"fd": 1.0, "label_agreement": 0.975}, {"fd": 2.0, "label_agreement": 0.98}, 0.98, True),
        # Further below it, the candidate loses whatever its FD.
        ({"fd": 1.0, "label_agreement": 0.9}, {"fd": 2.0, "label_agreement": 0.98}, 0.98, False),
        # A new top agreement the best is too far below: the candidate wins.
        ({"fd": 9.0, "label_agreement": 0.99}, {"fd": 2.0, "label_agreement": 0.95}, 0.99, True),
    ],
)
def test_which_evaluation_is_better(candidate, best, top, wins):
    assert better(candidate, best, top) is wins


def test_a_ddpm_run_chooses_its_guidance_on_the_kept_weights(tiny_shapes):
    engine = engines.get("ddpm")
    config = {
        "max_steps": 2,
        "batch_size": 8,
        "base_channels": 16,
        "layers_per_block": 1,
        "warmup_steps": 0,
        "eval_every": 1,
        "num_train_timesteps": 4,
    }
    # Evaluations at steps 1 and 2 (default guidance 2 at 8 px), then the other scales.
    scores = [3.0, 2.0]
    by_scale = {1.0: 5.0, 1.5: 0.5, 3.0: 4.0}
    made: list[Scripted] = []

    class ByScale(Scripted):
        def __call__(self, images, labels):
            self.calls.append((images, labels))
            n = len(self.calls)
            fd = scores[n - 1] if n <= len(scores) else by_scale[order[n - 1 - len(scores)]]
            return {"fd": fd, "label_agreement": 1.0}

    order = [1.0, 1.5, 3.0]
    scoring = Scoring(make_scorer=lambda held: made.append(ByScale([])) or made[-1])
    trained = engine.train(tiny_shapes, config, Hooks(scoring=scoring))
    assert trained.config["sample_guidance_scale"] == 1.5
    tuned = trained.selection["sampling_defaults"][0]
    assert tuned["option"] == "sample_guidance_scale" and tuned["chosen"] == 1.5
    assert {row["value"]: row["fd"] for row in tuned["scores"]} == {
        1.0: 5.0,
        1.5: 0.5,
        2.0: 2.0,
        3.0: 4.0,
    }
    # A scale the request names is the user's: nothing is tried.
    named = engine.train(
        tiny_shapes,
        {**config, "sample_guidance_scale": 2.0},
        Hooks(scoring=Scoring(make_scorer=lambda held: Scripted([1.0, 1.0]))),
    )
    assert named.config["sample_guidance_scale"] == 2.0
    assert named.selection["sampling_defaults"] == []


def test_a_run_without_a_scorer_says_it_was_not_scored(tiny_shapes):
    trained = MEAN.train(tiny_shapes, {**BASE, "max_steps": 2})
    assert trained.selection == {"eval_every": 0, "keep": "last", "scored": False}
    assert np.isfinite(trained.metrics["loss"])


@pytest.mark.parametrize(
    ("engine", "values", "size", "eval_every", "keep"),
    [
        ("gan", {}, 16, 250, "best"),
        ("gan", {}, 28, 500, "best"),
        ("ebm", {}, 16, 500, "best"),
        ("ddpm", {}, 28, 500, "best"),
        # A run shorter than the default interval is not scored unless asked.
        ("ddpm", {"max_steps": 100}, 16, 0, "last"),
        ("ddpm", {"max_steps": 100, "eval_every": 200}, 16, 200, "best"),
        # A private run is not scored unless asked, and then keeps its last weights.
        ("ddpm", {"privacy": {"epsilon": 5.0}}, 16, 0, "last"),
        ("ddpm", {"privacy": {"epsilon": 5.0}, "eval_every": 100}, 16, 100, "last"),
        ("gan", {"eval_every": 0}, 16, 0, "last"),
    ],
)
def test_scoring_defaults(engine, values, size, eval_every, keep):
    from models.engine_options import CONFIGS

    resolved = CONFIGS[engine](**values).resolved(size)
    assert (resolved.eval_every, resolved.keep) == (eval_every, keep)


def test_a_model_saved_before_scoring_existed_reads_as_unscored():
    from models.engine_options import CONFIGS

    for options in CONFIGS.values():
        saved = options.saved({"max_steps": 10})
        assert saved["eval_every"] == 0 and saved["keep"] == "last"
