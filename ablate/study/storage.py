"""The Optuna storage of studies: opening it, heartbeats, the stored spec, a budget lock."""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import logging
import os
import threading
import warnings
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import ExperimentalWarning

from ablate.errors import AblateError
from ablate.stores import (
    Stores,
    check_store_files,
    local_sqlite_missing,
    opening,
    read_only_url,
    redact,
    sqlite_path,
)
from ablate.testing.faults import WRITES, fault_point

if TYPE_CHECKING:
    from ablate.spec import StudySpec

# Optuna study / trial user attributes
SPEC_ATTR = "ablate_spec"
RUN_ID_ATTR = "mlflow_run_id"
REASON_ATTR = "fail_reason"
REPEAT_ATTR = "repeat"
ORIGIN_ATTR = "origin_trial"  # the number of the first attempt of a configuration
DEATHS_ATTR = "worker_deaths"  # times in a row this configuration's worker died
# an out-of-memory retry: {dotted path: value} it trains with (half the batch, ...)
OOM_ATTR = "oom_retry"
RETRIED_ATTR = "retried_as_new_trial"  # a failed attempt whose configuration was queued again
# set (True) on a trial whose runs cannot be reproduced bit for bit (CUDA, deterministic:
# false, or an operation without a deterministic implementation): never "identical"
INEXACT_ATTR = "not_bit_reproducible"
CONFIG_PARAM = "config"  # the Optuna param holding a fixed design's configuration label

HEARTBEAT_ENV = "ABLATE_HEARTBEAT"


def heartbeat_interval() -> int:
    """Seconds between a running trial's heartbeats; a trial silent for 3x this is dead."""
    raw = os.environ.get(HEARTBEAT_ENV, "10").strip()
    if not raw.isdigit() or int(raw) < 1 or int(raw) > 86400:
        raise AblateError(
            f"{HEARTBEAT_ENV}={raw!r}: expected a whole number of seconds from 1 to 86400 "
            f"(default 10); fix or unset it"
        )
    return int(raw)


def check_environment() -> None:
    """Environment variables ablate reads, each checked (one line naming it)."""
    heartbeat_interval()


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)


def engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine arguments for the storage at ``url``."""
    if url.startswith("sqlite"):
        # Wait for a busy SQLite file instead of failing at once.
        return {"connect_args": {"timeout": 60}}
    if url.startswith(("postgresql", "postgres")):
        # A host that drops packets would otherwise hang for the OS's TCP timeout.
        return {"connect_args": {"connect_timeout": 10}}
    return {}


def open_storage(
    stores: Stores, failed_trial_callback: Any = None, write: bool = False
) -> optuna.storages.RDBStorage:
    """The Optuna RDB storage with heartbeats on; an unreachable server is a one-line error.

    ``write``: a worker or ``create`` is about to write (a SQLite file is put in WAL mode).
    """
    _quiet_optuna()
    if write:
        check_store_files(stores)
    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs(stores.storage)}
    interval = heartbeat_interval()
    if failed_trial_callback is not None:
        # Optuna 4.9 renamed the argument (the old name warns, and goes in 6.0).
        params = inspect.signature(optuna.storages.RDBStorage).parameters
        name = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params
                else "failed_trial_callback")
        kwargs[name] = failed_trial_callback
    try:
        with opening(stores.storage, write, app="optuna"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats, stable since 2.x
            return _Storage(
                stores.storage if write else read_only_url(stores.storage),
                heartbeat_interval=interval,
                grace_period=3 * interval,
                **kwargs,
            )
    except AblateError:
        raise
    except Exception as err:  # noqa: BLE001 - driver errors differ per database
        raise storage_error(stores.storage, err) from None


class _Storage(optuna.storages.RDBStorage):
    """Optuna's RDB storage, with a fault point before each heartbeat (see ablate.faults):
    a kill there leaves a RUNNING trial without a heartbeat."""

    def record_heartbeat(self, trial_id: int) -> None:
        fault_point("after_running")
        super().record_heartbeat(trial_id)


class Heartbeat:
    """Records a running trial's heartbeat every ``heartbeat_interval`` seconds on a thread
    while the block runs (as ``study.optimize`` does), so that other workers can tell a live
    trial from a dead one."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int):
        self.storage = storage
        self.trial_id = trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval() or heartbeat_interval()
        while True:
            try:
                with WRITES:
                    self.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the worker's writes
                pass  # find a store that stopped working, with a clear message
            if self._stop.wait(interval):
                return

    def __enter__(self) -> Heartbeat:
        if self.storage.get_heartbeat_interval() is not None:
            self._thread = threading.Thread(target=self._beat, name="ablate-heartbeat",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def storage_error(url: str, err: BaseException) -> AblateError:
    """The one-line error for a storage that cannot be opened: a damaged SQLite file, or a
    server that does not answer."""
    text = str(err).strip()
    first = text.splitlines()[0][:200] if text else type(err).__name__
    path = sqlite_path(url)
    if path is not None:
        return AblateError(
            f"Optuna storage {path} cannot be opened as a SQLite database ({first}); if it is "
            "damaged, move it away (and its mlflow.db/artifacts if they belong together) or "
            "use another --store"
        )
    return AblateError(
        f"Optuna storage {redact(url)} cannot be reached: {first}; check that "
        "the server runs, and --storage / ABLATE_STORAGE"
    )


def study_names(stores: Stores) -> list[str]:
    """Names of the studies in the storage (none when its SQLite file does not exist)."""
    if local_sqlite_missing(stores.storage):
        return []
    return optuna.get_all_study_names(open_storage(stores))


def load_stored_spec(stores: Stores, name: str, overrides: list[str] | None = None) -> StudySpec:
    """The spec stored with study ``name`` (with ``--set`` overrides applied)."""
    from ablate.spec import spec_from_dict  # pydantic models: only for readers of the spec

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


class StoreLock:
    """An exclusive lock on one purpose (``kind``) of one study, across processes and machines.

    SQLite: ``flock`` on a file beside the database (processes of one machine share the file).
    PostgreSQL: a session advisory lock (any machine). Other databases: no lock.
    """

    kind = "lock"

    def __init__(self, storage: optuna.storages.RDBStorage, stores: Stores, study: str):
        self.storage = storage
        self.path = sqlite_path(stores.storage)
        self.postgres = stores.storage.startswith(("postgresql", "postgres"))
        # Two 32-bit keys (PostgreSQL keeps them apart from single 64-bit keys).
        self.keys = (_signed(zlib.crc32(self.kind.encode())), _signed(zlib.crc32(study.encode())))
        self._file: Any = None
        self._conn: Any = None

    def _file_name(self) -> str:
        return f"{self.path}.{self.kind}.lock"

    def acquire(self) -> None:
        if self.path is not None:
            self._file = open(self._file_name(), "a")  # noqa: SIM115 - held until release
            fcntl.flock(self._file, fcntl.LOCK_EX)
        elif self.postgres:
            import sqlalchemy

            self._conn = self.storage.engine.connect()
            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:a, :b)"),
                               {"a": self.keys[0], "b": self.keys[1]})
            self._conn.commit()

    def release(self) -> None:
        """Idempotent (the objective releases the budget lock as soon as its trial exists)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            import sqlalchemy

            try:
                self._conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:a, :b)"),
                                   {"a": self.keys[0], "b": self.keys[1]})
                self._conn.commit()
            finally:
                self._conn.close()  # a closed session releases its advisory locks anyway
                self._conn = None

    @contextlib.contextmanager
    def held(self) -> Iterator[StoreLock]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()


class BudgetLock(StoreLock):
    """Serialises "recover dead trials, count the trials, start one" across the workers of a
    study, so a search never overshoots its budget and a configuration is queued once."""

    kind = "budget"

    def _file_name(self) -> str:
        return f"{self.path}.lock"  # the name earlier versions used


class CreationLock(StoreLock):
    """Serialises "create the study or join it, and its MLflow parent run": workers started
    at once on a fresh store end with one study and one parent run."""

    kind = "create"


def _signed(value: int) -> int:
    """An unsigned 32-bit value as PostgreSQL's signed int4."""
    return value - (1 << 32) if value >= 1 << 31 else value
