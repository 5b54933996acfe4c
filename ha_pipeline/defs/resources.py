"""Dagster resources: Home Assistant, the SQL metadata store and InfluxDB.

Thin wrappers: each turns configuration into an object of the plain layer below, which
holds all of the logic. Secrets come from `dg.EnvVar`, so they never reach run config or the UI.
"""

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg
from pydantic import PrivateAttr

from ha_pipeline.timeseries.buckets import (
    DEFAULT_URL,
    BucketSpec,
    InfluxSettings,
    api_version_from_env,
    default_bucket_specs,
)

# The client, the store and the backend pull in websockets, SQLAlchemy and pandas: they are
# imported where a run first asks for them, so loading the definitions stays light (issue 16).
if TYPE_CHECKING:
    from ha_pipeline.homeassistant.client import HomeAssistantClient
    from ha_pipeline.metadata.store import MetadataStore
    from ha_pipeline.timeseries.backend import TimeseriesBackend


class HomeAssistantResource(dg.ConfigurableResource):
    """A Home Assistant instance reached over its WebSocket API."""

    url: str
    token: str
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    retry_budget_seconds: float = 30.0

    def client(self, **timeouts: float) -> "HomeAssistantClient":
        """A sync client (use as a context manager); `timeouts` override the configured ones."""
        from ha_pipeline.homeassistant.client import HomeAssistantClient

        settings = {
            "connect_timeout": self.connect_timeout,
            "command_timeout": self.command_timeout,
            "retry_budget_seconds": self.retry_budget_seconds,
            **timeouts,
        }
        return HomeAssistantClient(self.url, self.token, **settings)


def default_db_url() -> str:
    """`HA_PIPELINE_DB_URL`, else a SQLite file in `HA_PIPELINE_DATA_DIR` (default `.data`)."""
    if url := os.environ.get("HA_PIPELINE_DB_URL"):
        return url
    data_dir = Path(os.environ.get("HA_PIPELINE_DATA_DIR", ".data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'ha_metadata.db'}"


class MetadataStoreResource(dg.ConfigurableResource):
    """The SQL inventory. `db_url` unset means `default_db_url()`, resolved at run time so a
    PostgreSQL password in `HA_PIPELINE_DB_URL` never shows in run config."""

    db_url: str | None = None

    _store: "MetadataStore | None" = PrivateAttr(default=None)

    def store(self) -> "MetadataStore":
        """The store, migrated to the latest schema (once per resource instance)."""
        if self._store is None:
            from ha_pipeline.metadata.store import MetadataStore

            store = MetadataStore(self.db_url or default_db_url())
            store.upgrade()
            self._store = store
        return self._store


class InfluxDBResource(dg.ConfigurableResource):
    """InfluxDB 1.x or 2.x, chosen by `api_version` (env `INFLUXDB_API_VERSION`)."""

    url: str = DEFAULT_URL
    api_version: int = 2
    token: str | None = None
    org: str | None = None
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 60.0

    _backend: "TimeseriesBackend | None" = PrivateAttr(default=None)

    def backend(self) -> "TimeseriesBackend":
        """The backend for the configured server and API version (one per execution)."""
        if self._backend is None:
            from ha_pipeline.timeseries.backend import make_backend

            self._backend = make_backend(
                InfluxSettings(
                    url=self.url.rstrip("/"),
                    api_version=self.api_version,
                    token=self.token,
                    org=self.org,
                    username=self.username,
                    password=self.password,
                    timeout_seconds=self.timeout_seconds,
                )
            )
        return self._backend

    def bucket_specs(self) -> dict[str, BucketSpec]:
        """Bucket names and retentions from `INFLUXDB_BUCKET_*` / `*_RETENTION_DAYS`."""
        return default_bucket_specs(os.environ)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def _optional_env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location, configured from the environment."""
    return {
        "ha": HomeAssistantResource(url=dg.EnvVar("HA_URL"), token=dg.EnvVar("HA_TOKEN")),
        "metadata_store": MetadataStoreResource(),
        "influxdb": InfluxDBResource(
            # An EnvVar: the UI shows the variable's name, never a URL with credentials inside.
            url=_optional_env("INFLUXDB_URL") or DEFAULT_URL,
            api_version=api_version_from_env(),
            token=_optional_env("INFLUXDB_TOKEN"),
            org=os.environ.get("INFLUXDB_ORG"),
            username=os.environ.get("INFLUXDB_USERNAME"),
            password=_optional_env("INFLUXDB_PASSWORD"),
        ),
    }


F = TypeVar("F", bound=Callable[..., Any])


def is_permanent(error: BaseException) -> bool:
    """True for errors of the plain layers that waiting cannot heal (a rejected token, a server
    that is not HA or InfluxDB, values InfluxDB will not take, a malformed setting)."""
    from ha_pipeline.timeseries.line_protocol import LineProtocolError

    return getattr(error, "permanent", False) is True or isinstance(error, LineProtocolError)


@contextmanager
def fail_at_once() -> Iterator[None]:
    """Turn a permanent error into a `dg.Failure` that skips the retry policy, with the error's
    one sentence as the run's failure message; transient errors pass on to be retried."""
    try:
        yield
    except Exception as error:
        if not is_permanent(error):
            raise
        raise dg.Failure(description=str(error), allow_retries=False) from None


def fails_at_once(fn: F) -> F:
    """`fail_at_once` around a whole asset or check body (plain or generator), below `@dg.asset`."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            with fail_at_once():
                yield from fn(*args, **kwargs)

        return stream  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with fail_at_once():
            return fn(*args, **kwargs)

    return call  # type: ignore[return-value]
