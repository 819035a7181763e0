"""The one base class of a user's mistake, shared by every layer.

A package of its own, importing nothing: ``models/`` (torch alone, no service code) and
``core/`` (shipped in the API image, which has no ``models/``) may both import it.

A :class:`UserError` is something the person who sent the request can fix: a config out
of range, a dataset without labels, an archive that is not a model. Its message says how
and is shown to them verbatim (a job's ``error``, a problem+json ``detail``). Anything
else that escapes a job or a request is a bug (or an outage): the user gets a generic
message with an error id, the operators the traceback under that id.

It deliberately does not derive from ValueError: a ValueError raised by a bug (numpy,
torch, our own code) must not reach a user as if it were their fault.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; ``str(exc)`` says how and is safe to show."""
