"""Errors meant for a person.

A :class:`PwtopError` carries one line that says what failed, on which file or address, and
what to do. The CLI prints that line and exits with ``exit_code``; the traceback goes to the
log (and to the terminal only with ``--debug``).
"""

from __future__ import annotations


class PwtopError(Exception):
    """A failure with a one-line explanation for a person."""

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(PwtopError):
    """The configuration file or a setting is invalid."""


class TargetError(PwtopError):
    """The monitored target (database file, agent, URL) cannot be used."""
