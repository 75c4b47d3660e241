"""Where studies and runs are kept: an Optuna storage URL and an MLflow tracking URI.

The embedded default is a folder in the working directory (``./ablate_store``) holding
``optuna.db`` and ``mlflow.db`` (SQLite) and ``artifacts/``. Flags beat environment variables
(``ABLATE_STORAGE``, ``MLFLOW_TRACKING_URI``, ``ABLATE_STORE``), which beat the default.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ablate.errors import AblateError, StoreLost

DEFAULT_STORE = "ablate_store"
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")
_TRACKING_SCHEMES = _RDB_SCHEMES + ("http", "https", "file", "databricks")
# Python module a database URL needs -> the package that provides it.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "oracledb": "oracledb",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}


@dataclass(frozen=True)
class Stores:
    """The resolved storage locations of one command."""

    storage: str  # Optuna RDB URL
    tracking_uri: str  # MLflow tracking URI
    artifact_root: Path | None  # where a local tracking store keeps artifacts
    folder: Path | None = None  # the embedded store folder, when one is in use

    def flags(self, storage: bool = True) -> str:
        """The options that name these stores in a suggested command: ``--store`` where the
        embedded folder is in use, ``--storage`` and ``--tracking-uri`` where they are
        elsewhere (passwords shown as ``***``). A value that the environment gives
        (``ABLATE_STORAGE``, ...) or the default folder is left out: the same command in the
        same environment finds it again. ``storage``: whether the command takes ``--storage``.
        """
        parts: list[str] = []
        in_folder = False
        named = [("--tracking-uri", self.tracking_uri, "mlflow.db", "MLFLOW_TRACKING_URI")]
        if storage:
            named.insert(0, ("--storage", self.storage, "optuna.db", "ABLATE_STORAGE"))
        for flag, url, file, env in named:
            if self.folder is not None and url == f"sqlite:///{self.folder / file}":
                in_folder = True
            elif url != os.environ.get(env):
                parts.append(f"{flag} {shlex.quote(redact(url))}")
        default = Path(os.environ.get("ABLATE_STORE") or DEFAULT_STORE).absolute()
        if in_folder and self.folder != default:
            parts.insert(0, f"--store {shlex.quote(str(self.folder))}")
        return "".join(" " + part for part in parts)

    def describe(self) -> str:
        """Two lines for the terminal."""
        return (
            f"optuna storage: {redact(self.storage)}\nmlflow tracking: {redact(self.tracking_uri)}"
        )


def resolve_stores(
    store: str | Path | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
) -> Stores:
    """Resolve flags, environment and the embedded default into :class:`Stores`."""
    folder = Path(store or os.environ.get("ABLATE_STORE") or DEFAULT_STORE).absolute()
    storage = storage or os.environ.get("ABLATE_STORAGE") or f"sqlite:///{folder / 'optuna.db'}"
    tracking_uri = (
        tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{folder / 'mlflow.db'}"
    )
    _check_url(
        storage, _RDB_SCHEMES, "--storage / ABLATE_STORAGE",
        "sqlite:///path/optuna.db or postgresql://user:pass@host/db",
    )
    _check_url(
        tracking_uri, _TRACKING_SCHEMES, "--tracking-uri / MLFLOW_TRACKING_URI",
        "sqlite:///path/mlflow.db or http://host:5000",
    )
    _check_file_store(tracking_uri)
    for url in (storage, tracking_uri):
        check_sqlite_file(url)
    local = tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri
    artifact_root = folder / "artifacts" if local else None
    return Stores(storage, tracking_uri, artifact_root, folder)


def redact(url: str) -> str:
    """``url`` with its password (``scheme://user:password@host``) shown as ``***``."""
    return re.sub(r"^([A-Za-z][\w+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _check_url(url: str, schemes: tuple[str, ...], where: str, example: str) -> None:
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in schemes:
        raise AblateError(f"{where}: malformed URL '{redact(url)}'; expected e.g. {example}")
    # sqlite:///<path> always parses and its driver is the standard library's: no need to
    # import SQLAlchemy (~0.15 s) to check it
    if scheme in _RDB_SCHEMES and not url.startswith("sqlite:///"):
        _check_database_url(url, where, example)
    if scheme == "sqlite" and url.split("?", 1)[0] in ("sqlite://", "sqlite:///:memory:"):
        raise AblateError(
            f"{where}: '{url}' is an in-memory SQLite database, which keeps nothing once the "
            f"command ends (and workers cannot share it); give a file, e.g. {example}"
        )


def _check_file_store(uri: str) -> None:
    """MLflow 3 refuses to open file stores (``file://``, plain paths) unless told to."""
    if not (uri.startswith("file:") or "://" not in uri):
        return
    # read without importing mlflow (only ablate.tracking does): its major version, and its
    # MLFLOW_ALLOW_FILE_STORE switch as MLflow parses booleans ("true"/"1")
    if int(metadata.version("mlflow").split(".")[0]) < 3:  # MLflow 2 still writes file stores
        return
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() not in ("true", "1"):
        raise AblateError(
            f"--tracking-uri / MLFLOW_TRACKING_URI: '{uri}' is a file store, which this MLflow "
            "no longer opens; use a database, e.g. sqlite:///path/mlflow.db (`mlflow "
            "migrate-filestore` converts an old file store), or set MLFLOW_ALLOW_FILE_STORE=true"
        )


def _check_database_url(url: str, where: str, example: str) -> None:
    """A database URL SQLAlchemy can parse, whose driver is installed (checked without I/O)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = redact(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise AblateError(
            f"{where}: malformed URL '{shown}' ({reason}); expected e.g. {example}"
        ) from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        hint = " (write postgresql://, not postgres://)" if parsed.drivername.startswith(
            "postgres+") or parsed.drivername == "postgres" else ""
        raise AblateError(
            f"{where}: '{shown}' names the unknown database driver '{parsed.drivername}'{hint}; "
            f"expected e.g. {example}"
        ) from None
    import_dbapi: Any = getattr(dialect, "import_dbapi", None) or dialect.dbapi
    try:
        import_dbapi()
    except ImportError as err:
        module = err.name or parsed.get_driver_name()
        package = _DRIVER_PACKAGES.get(module.split(".")[0], module)
        raise AblateError(
            f"{where}: {shown} needs the database driver '{module}', which is not installed; "
            f"install it in this environment (pip install '{package}')"
        ) from None


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_file(url: str) -> None:
    """A local SQLite file that exists must be one (its header), checked without opening it,
    so that a damaged store is reported before anything else is written."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return
    with open(path, "rb") as handle:
        head = handle.read(len(_SQLITE_HEADER))
    if head and head != _SQLITE_HEADER[: len(head)]:
        raise AblateError(
            f"{path} is not a SQLite database (it starts with {head[:8]!r}); if it is damaged, "
            "move it away (and the rest of its store if they belong together) or use another "
            "--store"
        )


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (None for other URLs)."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def ensure_local_dirs(stores: Stores) -> None:
    """Create the folders of local SQLite files (only once something is about to be written)."""
    for url in (stores.storage, stores.tracking_uri):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    if stores.artifact_root is not None:
        stores.artifact_root.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def opening(url: str, write: bool = False, app: str | None = None) -> Iterator[None]:
    """The context in which a store client opens ``url``: an exclusive lock, because Optuna
    and MLflow both create (or migrate) their tables on first open and two processes doing
    that at once on a fresh database collide ("table ... already exists"). A local SQLite
    file: a lock file beside it; PostgreSQL: an advisory lock; other URLs: none.

    ``write``: the folder of a SQLite file is created first, and the file put in WAL mode
    (several workers write to it, and readers stop blocking the writer of another worker).
    Without it nothing is created or changed: no folder, no lock file (an existing one is
    used). ``app`` (``optuna`` or ``mlflow``): an existing SQLite file must be that
    application's database, and writable when ``write`` (:func:`check_database_file`).
    """
    if url.startswith(("postgresql", "postgres")):
        with _postgres_lock(url):
            yield
        return
    path = sqlite_path(url)
    if path is not None and app is not None:
        check_database_file(path, app, write)
    if path is not None and write:
        path.parent.mkdir(parents=True, exist_ok=True)
    if path is None or not path.parent.is_dir() or (
            not write and not Path(f"{path}.open.lock").exists()):
        yield
        return
    with open(f"{path}.open.lock", "a" if write else "r") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if write:
                with contextlib.closing(sqlite3.connect(path, timeout=60)) as db:
                    db.execute("PRAGMA journal_mode=WAL")
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_store_files(stores: Stores) -> None:
    """Before a command writes to ``stores``: both local SQLite files (the Optuna storage's
    and the MLflow store's) are those applications' databases and writable, so that nothing
    is written to one when the other would be refused (:func:`check_database_file`)."""
    for url, app in ((stores.storage, "optuna"), (stores.tracking_uri, "mlflow")):
        path = sqlite_path(url)
        if path is not None:
            check_database_file(path, app, write=True)


# Tables that make a SQLite file the database of each application ablate writes to.
APP_TABLES = {"optuna": {"studies", "trials"}, "mlflow": {"experiments", "runs"}}


def check_database_file(path: Path, app: str, write: bool) -> None:
    """An existing SQLite file about to be opened as ``app``'s database must hold that
    application's tables or none (a file of another application would get ablate's tables
    added to it), and be writable with its folder when ``write``; AblateError otherwise,
    before anything is written."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    tables = sqlite_tables(path)
    if tables and not APP_TABLES[app] <= tables:
        shown = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
        raise AblateError(
            f"{path} is not {'an Optuna' if app == 'optuna' else 'an MLflow'} database: it holds "
            f"other tables ({shown}), which ablate would add its own to; it belongs to "
            "another application: use another --store (or --storage / --tracking-uri), or "
            "move the file away")
    if write and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        which = path if not os.access(path, os.W_OK) else path.parent
        raise AblateError(f"{which} is read-only: nothing could be recorded in {path}; make "
                          "it writable, or use another --store")


def read_only_file(path: Path) -> str:
    """A ``file:`` URI that opens the SQLite file ``path`` for reading only, writing nothing
    beside it. Without a ``-wal`` file (no writer is at work: the last one checkpointed it
    away) the file is read as immutable: a read-only connection would otherwise create the
    ``-wal`` and ``-shm`` files and leave them; with one, it is read through them."""
    import urllib.parse

    quoted = urllib.parse.quote(str(path.absolute()))
    options = "mode=ro" if Path(f"{path}-wal").exists() else "mode=ro&immutable=1"
    return f"file:{quoted}?{options}"


def read_only_url(url: str) -> str:
    """``url`` as a reading command opens it: an existing local SQLite file read-only
    (:func:`read_only_file`), anything else as it is."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return url
    return f"sqlite:///{read_only_file(path)}&uri=true"


def sqlite_tables(path: Path) -> set[str]:
    """The table names of a SQLite file, read without writing anything beside it."""
    try:
        with contextlib.closing(sqlite3.connect(read_only_file(path), uri=True,
                                                timeout=60)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error as err:
        raise AblateError(f"{path} cannot be read as a SQLite database ({err}); if it is "
                          "damaged, move it away or use another --store") from None
    return {str(name) for (name,) in rows}


# pg_advisory_lock(int4, int4) keys of the first-open lock: "ablt", "open".
_OPEN_LOCK_KEYS = (0x61626C74, 0x6F70656E)


@contextlib.contextmanager
def _postgres_lock(url: str) -> Iterator[None]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool,
                                      connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:a, :b)"),
                         {"a": _OPEN_LOCK_KEYS[0], "b": _OPEN_LOCK_KEYS[1]})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:a, :b)"),
                             {"a": _OPEN_LOCK_KEYS[0], "b": _OPEN_LOCK_KEYS[1]})
                conn.commit()
    finally:
        engine.dispose()


def local_sqlite_missing(url: str) -> bool:
    """True for a sqlite URL whose file does not exist yet (so nothing can be read from it)."""
    path = sqlite_path(url)
    return path is not None and not path.exists()


@dataclass(frozen=True)
class FileIdentity:
    """A local file as the OS knows it: a file deleted (even while open) or replaced by
    another under the same name changes identity."""

    path: Path
    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return cls(path, stat.st_dev, stat.st_ino)


class StoreWatch:
    """The identity of a store's local SQLite files, taken when a worker opens them;
    :meth:`check` raises :class:`~ablate.errors.StoreLost` once one is gone or replaced.

    SQLite keeps writing into a deleted file through the connections already open, so without
    this a worker would log runs into nothing and report them done.
    """

    def __init__(self, *urls: str):
        self._files: list[FileIdentity] = []
        for url in urls:
            path = sqlite_path(url)
            identity = FileIdentity.of(path) if path is not None else None
            if identity is not None:
                self._files.append(identity)

    def check(self, owned: bool = True) -> None:
        """Raise StoreLost when a watched file is gone or replaced (``owned``: unused, so
        that a watch is a run's whole fence where no trial can be taken over)."""
        for known in self._files:
            now = FileIdentity.of(known.path)
            if now is None:
                raise StoreLost(f"{known.path} was deleted while this worker wrote to it; "
                                "nothing more is written there: restore the store (or start "
                                "over with another --store) and run the study again")
            if (now.device, now.inode) != (known.device, known.inode):
                raise StoreLost(f"{known.path} was replaced by another file while this worker "
                                "wrote to it; nothing more is written there: check which "
                                "store is the right one and run the study again")
