"""Retrain slots: at most N retrains at once, one run per job, and the lease that proves it.

Two kinds of slot, used together by `acquire` (one entry point, one `Lease`):

- Host slots (`files.py`): one `flock`ed file per slot, and one per job, in a private lock
  directory. The kernel releases a flock when its holder exits for any reason, SIGKILL included.
- Database slots (`database.py`; many hosts on one PostgreSQL): claiming a slot is inserting the
  run's `running` history row with a slot number and a lease expiry on the database clock; a
  partial unique index admits one running row per slot and per job, so racing claimers cannot
  over-admit. Without database slots (SQLite) the row is inserted without a number, and the
  per-job index alone keeps a job from running twice.

A `Heartbeat` (`heartbeat.py`) renews the row's heartbeat (and lease) while the run goes on.
"""

from __future__ import annotations

from retrain_cli.training.slots.database import Claim, running_slots, slots_held
from retrain_cli.training.slots.files import FileSlots, HostSlots, Lease, file_slots
from retrain_cli.training.slots.heartbeat import Cancelled, Heartbeat, LeaseLost
from retrain_cli.training.slots.lease import acquire

__all__ = [
    "Cancelled",
    "Claim",
    "FileSlots",
    "Heartbeat",
    "HostSlots",
    "Lease",
    "LeaseLost",
    "acquire",
    "file_slots",
    "running_slots",
    "slots_held",
]
