"""The agent's own exceptions: each one carries what an operator needs to act."""


class EngineError(Exception):
    """Base class; ``str()`` is the one line shown to the operator."""


class ConfigError(EngineError):
    """A config file, key or value that cannot be used."""

    def __init__(self, source: str, key: str, reason: str):
        self.source, self.key, self.reason = source, key, reason
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + reason)


class NotRunning(EngineError):
    """The supervisor is not running (no pid, or a stale one)."""


class ControlError(EngineError):
    """The supervisor refused or failed a control request."""
