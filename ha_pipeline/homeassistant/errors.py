"""Typed errors a user can meet when talking to Home Assistant.

Every message is one line that says what went wrong and what to do; none of them
ever contains the access token. ``permanent`` says whether waiting can help: a rejected token
or a server that is not Home Assistant stays so until the user changes the configuration, so
callers should fail at once instead of retrying.
"""

from __future__ import annotations


class HomeAssistantError(Exception):
    """Base class of every error raised by the Home Assistant client."""

    #: True when retrying cannot help (only the user's configuration can).
    permanent: bool = False


class AuthenticationError(HomeAssistantError):
    """Home Assistant rejected the access token (``auth_invalid``), or none was given."""

    permanent = True


class CannotConnectError(HomeAssistantError):
    """Home Assistant could not be reached within the retry budget, or the server is not HA
    (``permanent``: an HTML page, a 404, another WebSocket protocol)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__(message)


class ConnectionLostError(HomeAssistantError):
    """The WebSocket closed while a command was waiting for its result."""


#: Command error codes of HA's ``websocket_api/const.py`` that a retry cannot change.
PERMANENT_COMMAND_ERRORS = frozenset({"unauthorized", "unknown_command", "invalid_format", "not_supported"})


class CommandError(HomeAssistantError):
    """Home Assistant answered a command with ``success: false``."""

    def __init__(self, code: str, message: str, command_type: str = "") -> None:
        self.code = code
        self.message = message
        self.command_type = command_type
        self.permanent = code in PERMANENT_COMMAND_ERRORS
        what = f"{command_type!r} " if command_type else ""
        text = f"Home Assistant rejected command {what}({code}): {message}"
        if code == "unauthorized":
            # HA answers registry and recorder commands only for administrators.
            text += "; the token's user must be an administrator: create the token as one and set HA_TOKEN."
        super().__init__(text)


class CommandTimeoutError(HomeAssistantError):
    """A command got no result within the command timeout."""
