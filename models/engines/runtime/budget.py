"""The training budget: ``max_steps`` and ``max_seconds``."""

from __future__ import annotations

import time
from collections.abc import Mapping

from models.engines.base import EngineError


class Budget:
    """Stop after ``max_steps`` steps or ``max_seconds`` of training, whichever is first.

    Steps are the unit of record: ``total`` (for progress bars) is ``max_steps`` and the
    time limit only ever cuts a run short. Seconds already spent are carried through
    checkpoints, so a resumed run gets the remainder of its time, not a fresh allowance.
    """

    def __init__(self, max_steps: int, max_seconds: float | None = None) -> None:
        if max_steps <= 0:
            raise EngineError(f"max_steps must be positive, got {max_steps}")
        if max_seconds is not None and max_seconds <= 0:
            raise EngineError(f"max_seconds must be positive or null, got {max_seconds}")
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self._spent_before = 0.0
        self._started = time.monotonic()

    @property
    def total(self) -> int:
        return self.max_steps

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, including those before a resume."""
        return self._spent_before + (time.monotonic() - self._started)

    def exhausted(self, step: int) -> bool:
        """True when ``step`` steps are done or the time is up."""
        if step >= self.max_steps:
            return True
        return self.max_seconds is not None and self.elapsed >= self.max_seconds

    def state_dict(self) -> dict[str, float]:
        return {"elapsed": self.elapsed}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self._spent_before = float(state["elapsed"])
        self._started = time.monotonic()
