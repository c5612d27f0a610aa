"""The running row's heartbeat, renewed from a thread, and the lease fencing that stops a run
whose slot was taken away."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine

from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import RetrainError
from retrain_cli.core.settings import Settings
from retrain_cli.db.session import session_scope
from retrain_cli.training.slots.database import Beat, beat


class LeaseLost(RetrainError):
    """The run's database lease expired (the process was frozen or cut off): stop, register
    nothing, and leave the slot to whoever holds it now."""


class Cancelled(RetrainError):
    """An operator cancelled the run (`runs cancel`): stop, register nothing, record it."""


class Heartbeat:
    """Renews the run's heartbeat (and lease) from a thread; `check` raises once the run was
    taken away or, with a lease, once no renewal succeeded for a whole lease (a frozen or
    cut-off process learns it at its next step, before any renewal)."""

    def __init__(self, engine: Engine, settings: Settings, run_id: int, interval: float) -> None:
        self.engine, self.run_id, self.interval = engine, run_id, interval
        self.lease_s = settings.lease_ttl_s if settings.database_slots else None
        self._stop = threading.Event()
        self._lost = False
        self._cancelled = False
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> None:
        """Raise Cancelled or LeaseLost once the last beat found it: the runner calls it between
        phases and the trainers at each step of training (`TrainingContext.step`)."""
        if self._cancelled:
            raise Cancelled("cancelled by an operator (`runs cancel`): nothing registered")
        if self._lost:
            raise LeaseLost("the run was marked abandoned by another process: stopping")
        if self.lease_s is not None and time.monotonic() - self._renewed > self.lease_s:
            self._lost = True
            raise LeaseLost("the run's lease expired before it could be renewed: stopping")

    def fence(self, session: Any) -> None:
        """Renew inside the registering transaction: only a live lease may register."""
        self.check()
        found = beat(session, self.run_id, utcnow(), self.lease_s)
        if found is Beat.CANCELLED:
            self._cancelled = True
            raise Cancelled("cancelled by an operator before registering: nothing registered")
        if found is Beat.LOST:
            self._lost = True
            raise LeaseLost("the run's lease was lost before registering: nothing registered")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with session_scope(self.engine, check_schema=False) as session:
                    found = beat(session, self.run_id, utcnow(), self.lease_s)
                if found is Beat.LOST:
                    self._lost = True
                    return
                self._renewed = time.monotonic()
                # beating on: the run holds its slot until it has stopped and recorded it
                self._cancelled = self._cancelled or found is Beat.CANCELLED
            except RetrainError:
                continue  # a missed beat is retried; the lease bounds how long that can last
