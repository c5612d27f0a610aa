"""The config file (`$RETRAIN_HOME/config.yaml` or `RETRAIN_CONFIG`) as a typed model: every
key and its default, once."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, ValidationError

from retrain_cli.core.fields import FineSeconds, NotifyTarget, Seconds, Spec, Text, first_problem
from retrain_cli.core.notify import DEFAULT_TIMEOUT_S


class Metrics(Spec):
    textfile_dir: Text | None = None


class Smtp(Spec):
    host: Text = "localhost"
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 25
    from_: Annotated[Text, Field(alias="from")] = "retrain-cli@localhost"


class Notifications(Spec):
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = DEFAULT_TIMEOUT_S
    secret: Text | None = None
    smtp: Smtp | None = None
    targets: list[NotifyTarget] = Field(default_factory=list)


class Dask(Spec):
    scheduler: Text | None = None  # tcp://host:8786; RETRAIN_DASK_SCHEDULER wins
    timeout: FineSeconds = 10.0  # to reach the scheduler


class Serving(Spec):
    # also publish each serving document to this prefix of an object store (s3://bucket/serving/)
    store: Annotated[Text, Field(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://")] | None = None


class ConfigFile(Spec):
    """Every key of the config file, with its default; an unknown key is an error."""

    database_url: Text | None = None
    artifacts_dir: Text | None = None
    locks_dir: Text | None = None
    logs_dir: Text | None = None
    max_concurrent_retrains: Annotated[StrictInt, Field(ge=1, le=256)] = 3
    metrics: Metrics = Metrics()
    notifications: Notifications = Notifications()
    semaphore: Literal["auto", "file", "database"] = "auto"
    lease_ttl: FineSeconds = 60.0
    heartbeat_interval: FineSeconds = 15.0
    max_wait: Seconds = 3600  # a job due this long goes ahead of every job that waited less
    dask: Dask = Dask()
    serving: Serving = Serving()
    # fsspec's options per protocol (`s3: {endpoint_url: ..., key: ..., secret: ...}`), over
    # the store's own credential chain; secrets here are never printed
    storage_options: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]*$")], dict[str, Any]] = (
        Field(default_factory=dict)
    )

    def notification_settings(self) -> dict[str, Any]:
        """The `notifications` section as `notify.Notifier` reads it."""
        return self.notifications.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_config(document: dict[str, Any]) -> ConfigFile:
    """The validated config; ValueError with one line naming the key on a problem."""
    try:
        return ConfigFile.model_validate(document)
    except ValidationError as exc:
        raise ValueError(first_problem(exc)) from None
