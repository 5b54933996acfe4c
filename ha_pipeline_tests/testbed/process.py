"""Child server processes of the test bed: free ports, readiness waits, stop by pid."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# Where server logs are copied when a test session has failures (ignored by git).
TEST_LOGS_DIR = Path(__file__).resolve().parents[2] / "test-logs"


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the test process dies without teardown
    (e.g. killed by a CI timeout), so no server outlives its session."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ServerStartError(RuntimeError):
    """A test bed server did not become ready; the message carries its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log_path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ServerProcess:
    """One server child process with its log file; stopped by its own pid."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 stop_signal: int = signal.SIGTERM) -> None:
        self.name = name
        self.log_path = log_path
        self.stop_signal = stop_signal
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # A new session so a Ctrl-C in the terminal does not hit the server before
        # our teardown does; no stdin because CI has none.
        self.popen = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.pid = self.popen.pid

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `check` until true; return seconds waited. Raise with the log tail otherwise."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.running():
                raise ServerStartError(
                    f"{self.name} exited with code {self.popen.returncode} before {what}; "
                    f"log {self.log_path}:\n{log_tail(self.log_path)}")
            try:
                if check():
                    return time.monotonic() - start
            except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
                pass
            time.sleep(0.2)
        raise ServerStartError(
            f"{self.name} not ready ({what}) after {timeout:.0f} s; "
            f"log {self.log_path}:\n{log_tail(self.log_path)}")

    def stop(self, timeout: float = 20.0) -> None:
        """Signal our own pid, wait, then SIGKILL if it is still there."""
        try:
            if self.running():
                os.kill(self.pid, self.stop_signal)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    self.popen.wait(10)
        finally:
            self._log.close()

    def keep_log(self, label: str | None = None) -> Path:
        """Copy the log into test-logs/ and return the copy's path."""
        TEST_LOGS_DIR.mkdir(exist_ok=True)
        target = TEST_LOGS_DIR / f"{label or self.name}-{self.pid}.log"
        shutil.copyfile(self.log_path, target)
        return target
