"""One entry point for a retrain's slot: this host's first (fail fast), then the database's."""

from __future__ import annotations

from sqlalchemy import Engine

from retrain_cli.core.settings import Settings
from retrain_cli.training.slots.database import Claim, claim_within
from retrain_cli.training.slots.files import HostSlots, Lease


def acquire(
    engine: Engine, settings: Settings, claim: Claim, wait_seconds: float, host: HostSlots
) -> Lease:
    """The host's slot (fail fast), then the running row in a database slot, both within
    `wait_seconds`; BusyError (exit 75) when either is taken."""
    lease = host.acquire(claim.job, wait_seconds)
    try:
        lease.run_id = claim_within(engine, settings, claim, wait_seconds)
    except BaseException:
        lease.release()
        raise
    return lease
