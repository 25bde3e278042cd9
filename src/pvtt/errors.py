"""Exceptions with a meaning for the runner.

A stage raises :class:`RejectItem` when its input is valid but fails a quality bar (the item is
recorded as *rejected* with the message as the reason) and :class:`BadInput` when the input is
broken (recorded as *failed*). Any other exception is also recorded as *failed*, with its type and
message; neither stops the run.
"""


class PvttError(Exception):
    """Base class of pvtt's own errors."""


class RejectItem(PvttError):
    """Valid input that does not meet a quality bar; the message is the reason.

    ``metrics`` (measured values) and ``outputs`` (artifacts worth keeping, e.g. a rejected pair's
    video for the review page) are stored on the rejected record.
    """

    def __init__(self, reason: str, metrics: dict | None = None, outputs: dict | None = None):
        super().__init__(reason)
        self.metrics = metrics or {}
        self.outputs = outputs or {}


class BadInput(PvttError):
    """Broken input (unreadable file, wrong format, missing data); the message says what and where."""


class MissingArtifact(BadInput):
    """A stage's input is not there: the stage that makes it has no finished result for the item (not run yet,
    rejected or failed). Raised by the readers of :mod:`pvtt.artifacts`; ``record`` is that stage's record, if any.
    The item is recorded as *failed* with the message, like any broken input."""

    def __init__(self, stage: str, item_id: str, record: object = None, message: str | None = None):
        super().__init__(message or f"{stage} has no finished result for {item_id} (run the stages in order)")
        self.stage, self.item_id, self.record = stage, item_id, record

    def __reduce__(self):  # pickles with its fields (a runner may send it between processes)
        return type(self), (self.stage, self.item_id, self.record, str(self))


class ConfigError(PvttError):
    """An invalid setting; the message names the key."""


class WorkspaceBusy(PvttError):
    """Another pvtt process holds the workspace lock."""
