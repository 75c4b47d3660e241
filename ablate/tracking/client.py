"""Opening an MLflow tracking store: quiet loggers, a fast check that it answers."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from ablate.errors import AblateError
from ablate.stores import Stores, opening, read_only_url, sqlite_path

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def quiet_mlflow() -> None:
    """No progress bars or info lines from MLflow and alembic (set before ``import mlflow``),
    and no usage telemetry: MLflow would record every logging call and try to send the
    records from a background thread (runs are often offline; a user may set
    ``MLFLOW_DISABLE_TELEMETRY=false`` to keep it)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # over HTTP MLflow prints two "View run/experiment at" lines per ended run; trial lines say it
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import mlflow  # noqa: F401 - configures its loggers on import; quieten them after

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def probe_tracking_server(uri: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when an MLflow tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answered; an older server may lack /health
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise AblateError(
            f"MLflow tracking server {uri} cannot be reached: {reason}; start the server or fix "
            "--tracking-uri / MLFLOW_TRACKING_URI"
        ) from None


def open_client(stores: Stores, write: bool) -> MlflowClient:
    """A client of the tracking store; an unreachable or unusable store is a one-line error.

    MLflow creates (or migrates) its tables when the client opens a database store, so that
    happens inside :func:`ablate.stores.opening` (serialised for local SQLite files).
    """
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    probe_tracking_server(stores.tracking_uri)
    try:
        with opening(stores.tracking_uri, write, app="mlflow"):
            # a reading command writes nothing, not even SQLite's -wal/-shm files
            uri = stores.tracking_uri if write else read_only_url(stores.tracking_uri)
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
    except AblateError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure here is an unusable store
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        path = sqlite_path(stores.tracking_uri)
        if path is not None:
            raise AblateError(
                f"MLflow tracking store {path} cannot be opened as a SQLite database ({first}); "
                "if it is damaged, move it away or use another --store"
            ) from None
        raise AblateError(
            f"MLflow tracking store {stores.tracking_uri} cannot be reached: {first}"
        ) from None
    return client
