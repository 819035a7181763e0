"""The one error type of the metrics package."""

from errors import UserError


class MetricsError(UserError):
    """A problem the caller can fix; the message says how. Shown to users verbatim."""
