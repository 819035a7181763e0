"""Differentially private training (models/engines/runtime/privacy.py): each example's
contribution is clipped, the accountant agrees with Google's, the noise is solved for the
target ε, what cannot be private is refused naming ``privacy``, and tiny private ddpm and
gan runs report their ε and resume bit for bit."""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import dp_accounting
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from models import datasets, engines
from models.engine_options.base import PrivacyOptions, default_delta
from models.engine_options.gan import PRIVATE_VARIANTS, GANConfig
from models.engines import distributed, gan
from models.engines.base import EngineError, Hooks
from models.engines.nets import EnergyNet
from models.engines.runtime import privacy
from models.engines.runtime.privacy import PoissonOrder, Private

TINY: dict[str, dict[str, Any]] = {
    "ddpm": {"batch_size": 8, "base_channels": 16, "layers_per_block": 1, "warmup_steps": 0},
    "gan": {"batch_size": 8, "width": 4, "z_dim": 8, "variant": "vanilla"},
}
PRIVATE = {"epsilon": 4.0, "max_grad_norm": 0.5}


@pytest.fixture(scope="module")
def digits() -> datasets.ImageDataset:
    return datasets.load("digits", image_size=8, count=48)


def _private(module: nn.Module, *, n: int = 100, batch_size: int = 10, **kw: Any) -> Private:
    options = PrivacyOptions(epsilon=kw.pop("epsilon", 2.0), delta=1e-3, max_grad_norm=0.1)
    return Private(
        options,
        module=module,
        optimizer=torch.optim.SGD(module.parameters(), lr=0.1),
        name="net",
        n=n,
        batch_size=batch_size,
        steps=kw.pop("steps", 50),
        device=torch.device("cpu"),
    )


def test_each_examples_clipped_contribution_is_at_most_max_grad_norm():
    # gan's discriminator, each example's gradient the sum of its real and fake terms
    # (two forward passes, as a private D step takes them), with the noise set to 0:
    # the update of a one-example batch is that example's clipped gradient / batch size.
    torch.manual_seed(0)
    config = GANConfig(variant="vanilla", width=4).resolved(8)
    d = gan.build_discriminator(config, 1, 10)
    private = _private(d)
    private.optimizer.noise_multiplier = 0.0
    norms = []
    for _ in range(6):
        x, fake = torch.randn(1, 1, 8, 8) * 10, torch.randn(1, 1, 8, 8) * 10
        y = torch.randint(0, 10, (1,))
        loss = gan.discriminator_loss("vanilla", d(x, y), d(fake, y), 0.9) * 100
        private.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        raw = torch.cat([p.grad_sample.flatten() for p in d.parameters()]).norm()
        private.optimizer.pre_step()
        grads = torch.cat([p.grad.flatten() for p in d.parameters()])
        norms.append((float(raw), float(grads.norm()) * private.batch_size))
    assert all(clipped <= 0.1 + 1e-6 for _, clipped in norms), norms
    assert all(raw > 0.1 and clipped == pytest.approx(0.1, rel=1e-4) for raw, clipped in norms)


@pytest.mark.parametrize(
    ("sigma", "q", "steps", "delta"),
    [(1.0, 0.01, 1000, 1e-5), (0.8, 0.05, 500, 1e-4), (0.6, 0.125, 50, 1e-2)],
)
def test_the_prv_epsilon_agrees_with_google_dp_accounting_within_2_percent(
    sigma, q, steps, delta, caplog
):
    caplog.set_level(logging.ERROR)  # dp_accounting's RDP notes on orders it skips
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    pld = dp_accounting.pld.PLDAccountant()
    pld.compose(event)
    theirs = pld.get_epsilon(delta)
    ours = privacy.PRVAccountant()
    ours.history = [(sigma, q, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine = ours.get_epsilon(delta)
    assert abs(mine - theirs) / theirs < 0.02, (mine, theirs)


@pytest.mark.parametrize(("epsilon", "steps"), [(1.0, 200), (8.0, 1000)])
def test_the_noise_solved_for_epsilon_spends_at_most_it_and_close_to_it(epsilon, steps):
    private = _private(nn.Linear(3, 1), epsilon=epsilon, steps=steps)
    private.accountant.history = [(private.noise_multiplier, private.sample_rate, steps)]
    spent = private.epsilon()
    assert spent <= epsilon and epsilon - spent <= 0.01 * max(1.0, epsilon), spent


def test_poisson_batches_sample_each_example_with_probability_q_from_the_generator():
    order = PoissonOrder(1000, 0.05, torch.Generator().manual_seed(3))
    sizes = [len(order.next_indices()) for _ in range(200)]
    assert 45 < sum(sizes) / len(sizes) < 55 and len(set(sizes)) > 5
    again = PoissonOrder(1000, 0.05, torch.Generator().manual_seed(3))
    assert torch.equal(again.next_indices(), PoissonOrder(
        1000, 0.05, torch.Generator().manual_seed(3)).next_indices())  # fmt: skip


def test_delta_left_out_is_the_largest_power_of_ten_below_one_over_n():
    assert [default_delta(n) for n in (9, 10, 48, 1797, 8000, 60000)] == [
        0.1, 0.01, 0.01, 1e-4, 1e-4, 1e-5,
    ]  # fmt: skip
    assert all(default_delta(n) < 1 / n for n in range(1, 5000))


# ------------------------------------------------------------------ refusals


def test_a_network_with_batch_norm_is_refused_naming_privacy():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 1))
    with pytest.raises(EngineError, match=r"^privacy: Opacus cannot .* BatchNorm"):
        privacy.check_private(net, "discriminator")


def test_spectral_norm_is_refused_naming_privacy():
    with pytest.raises(EngineError, match="^privacy: Opacus cannot take each example"):
        privacy.check_private(EnergyNet(1, 8, 4, 10), "energy")


@pytest.mark.parametrize("variant", ["dcgan", "vanilla", "wgan-gp"])
def test_the_gan_variants_refused_for_privacy_are_those_opacus_cannot_take(variant):
    # dcgan: Opacus refuses its spectral norm; wgan-gp: Opacus takes its critic but not
    # the gradient penalty (refused by the options); vanilla: private.
    config = GANConfig(variant=variant, width=4).resolved(8)
    d = gan.build_discriminator(config, 1, 10)
    try:
        privacy.check_private(d, "discriminator")
    except EngineError:
        opacus_takes = False
    else:
        opacus_takes = True
    assert opacus_takes == (variant != "dcgan")
    assert (variant in PRIVATE_VARIANTS) == (variant == "vanilla")
    refusal = GANConfig(variant=variant).privacy_refusal()
    assert (refusal is None) == (variant in PRIVATE_VARIANTS)


def test_delta_not_below_one_over_n_is_refused_naming_privacy(digits):
    config = {**TINY["ddpm"], "max_steps": 1, "privacy": {**PRIVATE, "delta": 1 / 48}}
    with pytest.raises(EngineError, match=r"^privacy: delta 0.0208333 is not below 1/n"):
        engines.get("ddpm").train(digits, config)


def test_a_batch_larger_than_the_data_is_refused_naming_privacy(digits):
    config = {**TINY["ddpm"], "batch_size": 64, "max_steps": 1, "privacy": PRIVATE}
    with pytest.raises(EngineError, match=r"^privacy: batch_size 64 is more than the 48"):
        engines.get("ddpm").train(digits, config)


def test_several_gpus_are_refused_naming_privacy(digits, monkeypatch):
    monkeypatch.setattr(distributed, "current", lambda: distributed.Shard(rank=0, world_size=2))
    config = {**TINY["ddpm"], "max_steps": 1, "privacy": PRIVATE}
    with pytest.raises(EngineError, match=r"^privacy: .* one GPU.*gpus: 1"):
        engines.get("ddpm").train(digits, config)


@pytest.mark.parametrize(
    ("engine", "config", "match"),
    [
        ("ddpm", {"max_seconds": 60.0}, "privacy: max_seconds cannot be set"),
        ("gan", {"variant": "dcgan"}, "privacy: variant 'dcgan' puts spectral norm"),
        ("gan", {"variant": "wgan-gp"}, "privacy: variant 'wgan-gp' adds a gradient penalty"),
        ("ebm", {}, "privacy: the ebm engine cannot train privately"),
    ],
)
def test_what_breaks_the_guarantee_is_refused_by_the_engine_naming_privacy(
    digits, engine, config, match
):
    with pytest.raises(EngineError, match=match):
        engines.get(engine).train(digits, {**config, "max_steps": 1, "privacy": PRIVATE})


# ------------------------------------------------------------------ private runs


@pytest.mark.parametrize("name", ["ddpm", "gan"])
def test_a_tiny_private_run_reports_the_epsilon_it_spent(digits, name, tmp_path):
    seen: list[dict[str, float]] = []
    hooks = Hooks(progress=lambda step, total, **terms: seen.append(terms))
    config = {**TINY[name], "max_steps": 3, "checkpoint_every": 0, "privacy": PRIVATE}
    engine = engines.get(name)
    trained = engine.train(digits, config, hooks)
    report = trained.privacy
    assert report is not None
    assert 0 < report["epsilon"] <= PRIVATE["epsilon"] == report["target_epsilon"]
    assert report["epsilon"] == trained.metrics["epsilon"] == seen[-1]["epsilon"]
    assert [terms["epsilon"] for terms in seen] == [report["epsilon"]] * 3  # one block
    assert report["delta"] == default_delta(48) == trained.config["privacy"]["delta"]
    assert report["sample_rate"] == 8 / 48 and report["max_grad_norm"] == 0.5
    assert report["accountant"] == "prv" and report["noise_multiplier"] > 0
    n_critic = trained.config.get("n_critic", 1)
    assert report["steps"] == report["planned_steps"] == 3 * n_critic
    assert report["private_module"] == {"ddpm": "unet", "gan": "discriminator"}[name]
    assert not any(key in terms for terms in seen for key in ("grad_norm", "grad_norm_d"))
    engine.save(trained, tmp_path)  # the model files describe their privacy
    assert json.loads((tmp_path / "config.json").read_text())["privacy"] == report
    assert engine.load(tmp_path).privacy == report


def test_the_progress_reports_the_epsilon_of_each_blocks_end(digits, monkeypatch):
    # Counted every 2 steps here: steps 1 and 2 report ε(2), at least what they spent;
    # the last step its own.
    monkeypatch.setattr(privacy, "EPSILON_EVERY", 2)
    seen: list[float] = []
    hooks = Hooks(progress=lambda step, total, **terms: seen.append(terms["epsilon"]))
    config = {**TINY["ddpm"], "max_steps": 3, "privacy": PRIVATE}
    trained = engines.get("ddpm").train(digits, config, hooks)
    report = trained.privacy
    assert report is not None

    def spent(steps: int) -> float:
        accountant = privacy.PRVAccountant()
        accountant.history = [(report["noise_multiplier"], report["sample_rate"], steps)]
        return float(accountant.get_epsilon(delta=report["delta"]))

    assert seen == [spent(2), spent(2), spent(3)] and spent(1) < seen[0] < seen[2]
    assert seen[2] == report["epsilon"]


def test_a_non_private_run_says_so_and_reports_no_epsilon(digits, tmp_path):
    engine = engines.get("ddpm")
    trained = engine.train(digits, {**TINY["ddpm"], "max_steps": 1})
    assert trained.privacy is None and "epsilon" not in trained.metrics
    assert trained.config["privacy"] is None
    engine.save(trained, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["privacy"] is None


@pytest.mark.parametrize("name", ["ddpm", "gan"])
def test_a_resumed_private_run_equals_an_uninterrupted_one_bit_for_bit(digits, name, tmp_path):
    kept: dict[str, dict[int, Path]] = {"straight": {}, "resumed": {}}

    def keeper(run: str) -> Any:
        def keep(step: int, directory: Path) -> None:
            kept[run][step] = Path(shutil.copytree(directory, tmp_path / f"{run}-{step}"))

        return keep

    engine = engines.get(name)
    values = {**TINY[name], "max_steps": 4, "checkpoint_every": 2, "privacy": PRIVATE}
    straight = engine.train(digits, values, Hooks(checkpoint=keeper("straight")))
    resumed = engine.train(
        digits, values, Hooks(checkpoint=keeper("resumed"), resume_from=kept["straight"][2])
    )
    for module, net in straight.modules.items():
        other = resumed.modules[module].state_dict()
        assert all(torch.equal(other[k], v) for k, v in net.state_dict().items()), module
    assert resumed.privacy == straight.privacy
    first = load_file(kept["straight"][4] / "checkpoint.safetensors")
    second = load_file(kept["resumed"][4] / "checkpoint.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first if not k.startswith("budget"))
    meta = json.loads((kept["resumed"][4] / "checkpoint.json").read_text())
    assert meta["privacy"]["history"] == [[straight.privacy["noise_multiplier"], 8 / 48, 4 * (
        straight.config.get("n_critic") or 1)]]  # fmt: skip


@pytest.mark.parametrize("name", ["ddpm", "gan"])
def test_an_empty_poisson_batch_is_a_step_of_noise_alone(digits, name, monkeypatch):
    draws = iter([True, False])
    draw = PoissonOrder.next_indices

    def first_empty(order: PoissonOrder) -> torch.Tensor:
        indices = draw(order)
        return indices[:0] if next(draws, False) else indices

    monkeypatch.setattr(PoissonOrder, "next_indices", first_empty)
    seen: list[dict[str, float]] = []
    hooks = Hooks(progress=lambda step, total, **terms: seen.append(terms))
    trained = engines.get(name).train(
        digits, {**TINY[name], "max_steps": 2, "privacy": PRIVATE}, hooks
    )
    assert trained.privacy is not None and trained.privacy["steps"] == 2  # both counted
    loss = {"ddpm": "loss", "gan": "loss_d"}[name]
    assert loss not in seen[0] and loss in seen[1] and "epsilon" in seen[0]


def test_the_batches_and_noise_of_a_private_run_do_not_follow_its_seed(digits, monkeypatch):
    # The seed is in the model's config: noise drawn from it could be redrawn and removed.
    engine = engines.get("ddpm")
    values = {**TINY["ddpm"], "max_steps": 2, "privacy": PRIVATE}
    first, second = engine.train(digits, values), engine.train(digits, values)
    assert not torch.equal(
        first.modules["unet"].conv_in.weight, second.modules["unet"].conv_in.weight
    )
    monkeypatch.setattr(privacy, "secret_seed", lambda: 7)  # the secret alone decides them
    first, second = engine.train(digits, values), engine.train(digits, values)
    assert torch.equal(first.modules["unet"].conv_in.weight, second.modules["unet"].conv_in.weight)


def test_a_private_run_resumes_only_with_the_max_steps_its_noise_was_solved_for(digits, tmp_path):
    kept: list[Path] = []
    hooks = Hooks(checkpoint=lambda step, d: kept.append(Path(shutil.copytree(d, tmp_path / "c"))))
    values = {**TINY["ddpm"], "max_steps": 2, "checkpoint_every": 1, "privacy": PRIVATE}
    engine = engines.get("ddpm")
    engine.train(digits, {**values, "max_steps": 1}, hooks)
    with pytest.raises(EngineError, match="privacy: the checkpoint's run was private over 1"):
        engine.train(digits, values, Hooks(resume_from=kept[0]))
