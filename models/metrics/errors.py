"""The one error type of the metrics package."""


class MetricsError(ValueError):
    """A problem the caller can fix; the message says how. Shown to users verbatim."""
