"""The privacy section of an evaluate's report (report.json's ``privacy``, report.html's
"Privacy audit"), as :func:`models.metrics.privacy.audit` fills it."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PIXELS = "pixels"
FEATURES = "features"


@dataclass
class PrivacyReport:
    """The privacy section of report.json and report.html."""

    train: str
    holdout: str
    counts: dict[str, int]
    memorization: dict[str, Any] | None = None
    """{"pixels" | "features": audit.to_dict()}."""
    headline_space: str = PIXELS
    gallery: list[dict[str, Any]] = field(default_factory=list)
    gallery_pngs: list[bytes] = field(default_factory=list)
    membership: list[dict[str, Any]] | None = None
    differential_privacy: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "training_set": self.train,
            "held_out": self.holdout,
            "counts": self.counts,
            "memorization": self.memorization,
            "headline_space": self.headline_space,
            "gallery": self.gallery,
            "membership_inference": self.membership,
            "differential_privacy": self.differential_privacy,
            "notes": self.notes,
            "what_it_proves": WHAT_IT_PROVES,
        }

    def to_html(self) -> str:
        parts = [
            f"<p>Training set {html.escape(self.train)} ({self.counts['train']} images); "
            f"held-out real images from {html.escape(self.holdout)} "
            f"({self.counts['held_out']}); {self.counts['synthetic']} synthetic images "
            "audited. Figures are in the metrics table above, each with its 95 % interval and "
            "beside the same test of held-out real images against the training set.</p>",
            f"<p class='note'>{html.escape(WHAT_IT_PROVES)}</p>",
        ]
        parts += [f"<p>{html.escape(note)}</p>" for note in self.notes]
        if self.memorization:
            headline = self.memorization.get(self.headline_space, {})
            parts.append(
                f"<p>{html.escape(str(headline.get('summary', '')))}</p>"
                "<h3>The most copy-like synthetic images</h3><p class='note'>Each synthetic "
                "image (left) beside its nearest training image (right), nearest first, in "
                "pixels at the model's size. d1: ℓ2 distance to the nearest training image; "
                "ratio: d1 / d2 (a copy below 1/3, Gu et al.); calibrated: Carlini et al.'s "
                "calibrated ℓ2 (a copy below 1).</p><div class='pairs'>"
            )
            for item, png in zip(self.gallery, self.gallery_pngs, strict=True):
                data = base64.b64encode(png).decode("ascii")
                parts.append(
                    f"<figure><img alt='' src='data:image/png;base64,{data}'><figcaption>"
                    f"d1 {item['d1']:.3g}, ratio {item['ratio']:.2f}, calibrated "
                    f"{item['calibrated']:.2f}; training image #{item['train']}"
                    "</figcaption></figure>"
                )
            parts.append("</div>")
        if self.membership:
            rows = "".join(
                f"<tr><td>{html.escape(a['name'])}</td>"
                f"<td class='num'>{_interval(a['auc'])}</td>"
                f"<td class='num'>{_interval(a['tpr_at_fpr'])}</td>"
                f"<td class='num'>{a['members']} / {a['nonmembers']}</td></tr>"
                for a in self.membership
            )
            parts.append(
                "<h3>Membership inference</h3><table><tr><th>Attack</th><th>AUC (0.5: "
                "chance)</th><th>TPR at 1% FPR (0.01: chance)</th><th>Members / "
                f"non-members</th></tr>{rows}</table>"
            )
        dp = self.differential_privacy
        if dp:
            verdict = (
                "no membership attack was asked to check it"
                if not dp["attacks"]
                else "an attack exceeds it: the training was not as private as recorded"
                if dp["violated"]
                else "no attack's interval lies above it"
            )
            parts.append(
                f"<p>Trained with differential privacy at ε = {dp['epsilon']:.3g}, δ = "
                f"{dp['delta']:.2g}: no attack may reach a TPR above "
                f"{dp['tpr_bound_at_1pct_fpr']:.3g} at 1% FPR; {verdict}.</p>"
            )
        return "".join(parts)


def _interval(figure: Mapping[str, float]) -> str:
    return f"{figure['value']:.3f} [{figure['low']:.3f}, {figure['high']:.3f}]"


WHAT_IT_PROVES = (
    "An audit is evidence, not a guarantee: these figures say how close these synthetic "
    "images are to the training images, and how well these particular attacks tell training "
    "images from held-out ones. A stronger attack, or another sample, may find more. Only "
    "differential privacy bounds what any attack can learn, and only for the epsilon stated."
)
