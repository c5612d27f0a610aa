"""retrain-cli: cron-driven drift checks, performance checks, retraining and model versions."""

from retrain_cli.core.errors import (
    BusyError,
    ConfigError,
    ConflictError,
    DatabaseError,
    DataError,
    JobSpecError,
    NotAvailableError,
    NotFoundError,
    RetrainError,
)

__version__ = "0.1.0"

__all__ = [
    "BusyError",
    "ConfigError",
    "ConflictError",
    "DataError",
    "DatabaseError",
    "JobSpecError",
    "NotAvailableError",
    "NotFoundError",
    "RetrainError",
    "__version__",
]
