"""Sizes and defaults of the conv networks gan and ebm share (:mod:`models.engines.nets`),
torch-free so the options that depend on them can be validated anywhere."""

from __future__ import annotations

IMAGE_SIZES = (8, 16, 28, 32, 64)
"""Square sizes the networks are built for (a 4×4 or, at 28 px, 7×7 base doubled)."""

WIDTH = [(16, 16), (32, 32), (None, 64)]
"""Channels at full resolution by image size: small enough that a CPU trains a 16 px
model in minutes, wider for the larger images that need it."""

UPSAMPLE = [(16, "transposed"), (None, "nearest")]
"""How the DCGAN generator doubles resolution by image size.

Transposed convs up to 16 px: three times cheaper per step than upsample-then-conv, and on
digits at 16 px they reach 0.99 label agreement in 150 CPU-seconds where upsample-then-conv
reaches 0.66 in as many seconds (a third as many steps). From 28 px on, nearest upsampling
and a 3×3 conv: with transposed convs the spectral-norm D separated real MNIST from G's
grid-patterned samples for good (hinge ``loss_d`` stuck at 0, label agreement 0.10 after
300 s at width 16 and 32), with upsampling it recovers within ~100 steps (bench notes in
BENCHMARKS.md, "gan at 28 px")."""
