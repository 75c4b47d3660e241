"""The Optuna storage of studies: opening it, heartbeats, the stored spec, a budget lock."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import zlib
from collections.abc import Iterator
from typing import Any

import optuna

from ablate.errors import AblateError
from ablate.spec import StudySpec, spec_from_dict
from ablate.stores import Stores, local_sqlite_missing, opening, redact, sqlite_path

# Optuna study / trial user attributes
SPEC_ATTR = "ablate_spec"
RUN_ID_ATTR = "mlflow_run_id"
REASON_ATTR = "fail_reason"
REPEAT_ATTR = "repeat"
ORIGIN_ATTR = "origin_trial"  # the number of the first attempt of a configuration
CONFIG_PARAM = "config"  # the Optuna param holding a fixed design's configuration label

HEARTBEAT_ENV = "ABLATE_HEARTBEAT"


def heartbeat_interval() -> int:
    """Seconds between a running trial's heartbeats; a trial silent for 3x this is dead."""
    return max(1, int(os.environ.get(HEARTBEAT_ENV, "10")))


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)


def open_storage(
    stores: Stores, failed_trial_callback: Any = None, write: bool = False
) -> optuna.storages.RDBStorage:
    """The Optuna RDB storage with heartbeats on; an unreachable server is a one-line error.

    ``write``: a worker or ``create`` is about to write (a SQLite file is put in WAL mode).
    """
    _quiet_optuna()
    kwargs: dict[str, Any] = {}
    if stores.storage.startswith("sqlite"):
        # Wait for a busy SQLite file instead of failing at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    elif stores.storage.startswith(("postgresql", "postgres")):
        # A host that drops packets would otherwise hang for the OS's TCP timeout.
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": 10}}
    interval = heartbeat_interval()
    try:
        with opening(stores.storage, write):
            return optuna.storages.RDBStorage(
                stores.storage,
                heartbeat_interval=interval,
                grace_period=3 * interval,
                failed_trial_callback=failed_trial_callback,
                **kwargs,
            )
    except Exception as err:  # noqa: BLE001 - driver errors differ per database
        text = str(err).strip()
        first = text.splitlines()[0][:200] if text else type(err).__name__
        raise AblateError(
            f"Optuna storage {redact(stores.storage)} cannot be reached: {first}; check that "
            "the server runs, and --storage / ABLATE_STORAGE"
        ) from None


def study_names(stores: Stores) -> list[str]:
    """Names of the studies in the storage (none when its SQLite file does not exist)."""
    if local_sqlite_missing(stores.storage):
        return []
    return optuna.get_all_study_names(open_storage(stores))


def load_stored_spec(stores: Stores, name: str, overrides: list[str] | None = None) -> StudySpec:
    """The spec stored with study ``name`` (with ``--set`` overrides applied)."""
    names = study_names(stores)
    if name not in names:
        known = ", ".join(names[:8]) or "none yet"
        raise AblateError(
            f"no study named '{name}' in {redact(stores.storage)} (studies: {known}); "
            f"create it with `ablate study create SPEC.yaml`"
        )
    study = optuna.load_study(study_name=name, storage=open_storage(stores))
    raw = study.user_attrs.get(SPEC_ATTR)
    if raw is None:
        raise AblateError(f"study '{name}' was not created by ablate (no stored spec)")
    return spec_from_dict(raw, overrides, source=f"study '{name}'")


class BudgetLock:
    """Serialises "count the trials, then start one" across the workers of one study.

    SQLite: an exclusive lock on a file beside the database (workers on one machine).
    PostgreSQL: a session advisory lock (workers on any machine). Other databases: no lock.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, stores: Stores, study: str):
        self.storage = storage
        self.path = sqlite_path(stores.storage)
        self.key = zlib.crc32(study.encode())
        self.postgres = stores.storage.startswith(("postgresql", "postgres"))
        self._file: Any = None
        self._conn: Any = None

    def acquire(self) -> None:
        if self.path is not None:
            self._file = open(f"{self.path}.lock", "a")  # noqa: SIM115 - held until release
            fcntl.flock(self._file, fcntl.LOCK_EX)
        elif self.postgres:
            import sqlalchemy

            self._conn = self.storage.engine.connect()
            self._conn.execute(sqlalchemy.text(f"SELECT pg_advisory_lock({self.key})"))

    def release(self) -> None:
        """Idempotent: the objective releases it as soon as its trial exists."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            import sqlalchemy

            self._conn.execute(sqlalchemy.text(f"SELECT pg_advisory_unlock({self.key})"))
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def held(self) -> Iterator[BudgetLock]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()
