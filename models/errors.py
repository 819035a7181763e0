"""Signals of the models package that code without torch must tell apart."""

from __future__ import annotations


class Stopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside train/sample when ``hooks.should_stop()`` turned true (job canceled).

    Neither the user's mistake nor a bug: the job ends as whoever stopped it decided.
    Here, not in models/engines, so that code without torch can tell it apart."""
