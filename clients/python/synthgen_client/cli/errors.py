"""Exit codes of the ``synthgen`` command, and the one error a command raises to say that
the user must change something. Documented in the README ("Exit codes")."""

from __future__ import annotations

EXIT_OK = 0
EXIT_BUG = 1  # an unexpected error: one line, and SYNTHGEN_DEBUG=1 shows the traceback
EXIT_USAGE = 2  # bad arguments or input, a missing key, a local database that is not there
EXIT_API = 3  # the API refused the request (its problem+json, in one line)
EXIT_JOB_FAILED = 4  # the job ended failed or canceled, or was still running at --timeout
EXIT_NETWORK = 5  # the API could not be reached, or `up` could not listen on its port
EXIT_INCOMPLETE = 6  # a download does not match the artifact listing
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT): the command stopped; a job keeps running


class UsageError(Exception):
    """The user's call cannot be served as given; the message says what to do."""

    exit_code = EXIT_USAGE


class NetworkUnavailable(UsageError):
    exit_code = EXIT_NETWORK
