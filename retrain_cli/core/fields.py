"""Field types shared by the job spec and the config file, and one-line validation errors.

Only durations need code of their own here; everything else is pydantic's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from retrain_cli.core.durations import parse_duration


def _seconds(value: Any) -> float:
    if not isinstance(value, str | int | float):
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 1h, 30d, 2w)")
    return parse_duration(value).total_seconds()


MAX_FIELD_CHARS = 65_536  # any one text field, or a job's hyperparameters as JSON
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_FIELD_CHARS, strict=True),
]
Seconds = Annotated[int, BeforeValidator(lambda value: int(_seconds(value)))]  # whole seconds
FineSeconds = Annotated[float, BeforeValidator(_seconds)]  # fractions kept: leases, heartbeats
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # finite, not a string


class Spec(BaseModel):
    """A section of a job or config file: unknown keys are errors, values validated strictly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NotifyTarget(Spec):
    """Exactly one of a webhook URL, a Slack-compatible webhook URL or an e-mail address."""

    webhook: Text | None = None
    slack: Text | None = None
    email: Text | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> NotifyTarget:
        if len(self.model_dump(exclude_none=True)) != 1:
            raise ValueError("expected one of {webhook: URL}, {slack: URL}, {email: ADDRESS}")
        return self

    @property
    def kind(self) -> Literal["webhook", "slack", "email"]:
        return "webhook" if self.webhook else "slack" if self.slack else "email"

    @property
    def address(self) -> str:
        return self.webhook or self.slack or self.email or ""


def first_problem(exc: ValidationError) -> str:
    """One line: the first invalid field's dotted path and what is wrong with it."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    if error["type"] == "missing":
        return f"{where}: is required"
    if error["type"] in ("enum", "literal_error"):
        return (
            f"{where}: {error['input']!r} is not one of {message.removeprefix('Input should be ')}"
        )
    return f"{where}: {message}" if where else message
