"""A throwaway PostgreSQL cluster (Debian's binaries) on loopback, owned by `postgres`.

PostgreSQL refuses to run as root, so when we are root the cluster directory is
chowned to the `postgres` user and the binaries run under `setpriv` (which execs, so the
pid we hold is the postmaster's own).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .process import ServerProcess, free_port

DB_NAME = "ha_pipeline_test"
DB_USER = "ha_pipeline"
DB_PASSWORD = "testbed-pg-pw"


@dataclass
class PostgresServer:
    """A running postmaster: `.url` (SQLAlchemy, psycopg2), `.pid`, `.base_dir`."""

    url: str
    pid: int
    base_dir: Path
    port: int
    startup_seconds: float = 0.0
    process: ServerProcess | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Fast shutdown (SIGINT) by pid, then remove the cluster directory."""
        try:
            if self.process is not None:
                self.process.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def pg_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/*/bin holding initdb."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(Path(p).parent.parent.name.split(".")[0]))
    if not dirs:
        raise FileNotFoundError("PostgreSQL binaries not found: run `make system-deps` "
                                "(apt-get install postgresql)")
    return Path(dirs[-1]).parent


def _as_owner() -> tuple[list[str], int | None, int | None]:
    """Command prefix and uid/gid so the server does not run as root."""
    if os.geteuid() != 0:
        return [], None, None
    user = pwd.getpwnam("postgres")
    # setpriv execs (the pid we hold is the postmaster's); the parent-death signal is set
    # here again because changing uid clears the one ServerProcess sets.
    return (["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
             "--pdeathsig=SIGINT", "--"],
            user.pw_uid, user.pw_gid)


def start_postgres(timeout: float = 60.0) -> PostgresServer:
    """initdb a fresh cluster in its own temp dir, start it, create the test database."""
    bin_dir = pg_bin_dir()
    prefix, uid, gid = _as_owner()
    # Own mkdtemp under /tmp: pytest's tmp dirs are 0700 root, which `postgres` cannot enter.
    base = Path(tempfile.mkdtemp(prefix="ha_pipeline_pg_"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if uid is not None:
        for path in (base, sock):
            os.chown(path, uid, gid)
    pwfile = base / "pwfile"
    pwfile.write_text(DB_PASSWORD + "\n")
    if uid is not None:
        os.chown(pwfile, uid, gid)
    started = time.monotonic()
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", DB_USER,
                        f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                        "--locale=C", "--no-sync"],
                       check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {exc.stderr.strip()[-2000:]}") from None
    port = free_port()
    log_path = base / "postgres.log"
    log_path.touch()
    if uid is not None:
        os.chown(log_path, uid, gid)
    proc = ServerProcess(
        "postgres",
        [*prefix, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sock}",
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        log_path, stop_signal=signal.SIGINT)
    server = PostgresServer(url="", pid=proc.pid, base_dir=base, port=port, process=proc)
    try:
        isready = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"]
        proc.wait_ready(lambda: subprocess.run(isready, stdin=subprocess.DEVNULL).returncode == 0,
                        timeout, "pg_isready")
        env = {**os.environ, "PGPASSWORD": DB_PASSWORD}
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                        "-U", DB_USER, DB_NAME], check=True, env=env, capture_output=True,
                       stdin=subprocess.DEVNULL)
    except BaseException:
        server.stop()
        raise
    server.url = f"postgresql+psycopg2://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{port}/{DB_NAME}"
    server.startup_seconds = time.monotonic() - started
    return server
