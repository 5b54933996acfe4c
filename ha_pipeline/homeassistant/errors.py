"""Typed errors a user can meet when talking to Home Assistant.

Every message is one line that says what went wrong and what to do; none of them
ever contains the access token.
"""

from __future__ import annotations


class HomeAssistantError(Exception):
    """Base class of every error raised by the Home Assistant client."""


class AuthenticationError(HomeAssistantError):
    """Home Assistant rejected the access token (``auth_invalid``)."""


class CannotConnectError(HomeAssistantError):
    """Home Assistant could not be reached within the retry budget."""


class ConnectionLostError(HomeAssistantError):
    """The WebSocket closed while a command was waiting for its result."""


class CommandError(HomeAssistantError):
    """Home Assistant answered a command with ``success: false``."""

    def __init__(self, code: str, message: str, command_type: str = "") -> None:
        self.code = code
        self.message = message
        self.command_type = command_type
        what = f"{command_type!r} " if command_type else ""
        super().__init__(f"Home Assistant rejected command {what}({code}): {message}")


class CommandTimeoutError(HomeAssistantError):
    """A command got no result within the command timeout."""
