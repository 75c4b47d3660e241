"""Where studies and runs are kept: an Optuna storage URL and an MLflow tracking URI.

The embedded default is a folder in the working directory (``./ablate_store``) holding
``optuna.db`` and ``mlflow.db`` (SQLite) and ``artifacts/``. Flags beat environment variables
(``ABLATE_STORAGE``, ``MLFLOW_TRACKING_URI``, ``ABLATE_STORE``), which beat the default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ablate.errors import AblateError

DEFAULT_STORE = "ablate_store"
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")
_TRACKING_SCHEMES = _RDB_SCHEMES + ("http", "https", "file", "databricks")


@dataclass(frozen=True)
class Stores:
    """The resolved storage locations of one command."""

    storage: str  # Optuna RDB URL
    tracking_uri: str  # MLflow tracking URI
    artifact_root: Path | None  # where a local tracking store keeps artifacts

    def describe(self) -> str:
        """Two lines for the terminal."""
        return f"optuna storage: {self.storage}\nmlflow tracking: {self.tracking_uri}"


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
    local = tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri
    artifact_root = folder / "artifacts" if local else None
    return Stores(storage=storage, tracking_uri=tracking_uri, artifact_root=artifact_root)


def _check_url(url: str, schemes: tuple[str, ...], where: str, example: str) -> None:
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in schemes:
        raise AblateError(f"{where}: malformed URL '{url}'; expected e.g. {example}")


def ensure_local_dirs(stores: Stores) -> None:
    """Create the folders of local SQLite files (only once something is about to be written)."""
    for url in (stores.storage, stores.tracking_uri):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if stores.artifact_root is not None:
        stores.artifact_root.mkdir(parents=True, exist_ok=True)


def local_sqlite_missing(url: str) -> bool:
    """True for a sqlite URL whose file does not exist yet (so nothing can be read from it)."""
    return url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()
