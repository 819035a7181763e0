"""The training runtime every engine runs on (torch only), one small module per concern.

An engine keeps its networks, its loss and its sampler; the rest is here:

- :mod:`.engine`: :class:`~.engine.RuntimeEngine`, the Engine contract's train, sample,
  save and load around an engine's own run and sampler.
- :mod:`.run`: :class:`~.run.TrainingRun`, the state every run shares (data placement,
  generator, data order, shard, budget, step, recent losses) and its checkpoint.
- :mod:`.loop`: the step loop (progress, cancel, checkpoints) and resuming.
- :mod:`.resume`: the bookkeeping of a checkpoint and which config keys may change.
- :mod:`.config`: options classes built from user values, errors naming the key.
- :mod:`.rng`, :mod:`.data_order`, :mod:`.budget`, :mod:`.ema`: what makes a run
  reproducible and resumable.
- :mod:`.checkpoints` (resumable states) and :mod:`.model_files` (trained models):
  safetensors + JSON, never pickle; :mod:`.finetune` starts a run from saved weights.
- :mod:`.devices`, :mod:`.pixels`, :mod:`.numerics`, :mod:`.labels`: devices and
  autocast, the uint8 ↔ [-1, 1] conversions, divergence checks, label checks.
"""
