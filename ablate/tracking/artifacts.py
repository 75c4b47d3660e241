"""Where a run's artifacts live, so that a store folder can be copied or moved anywhere.

Experiments of a local store are created with ``mlflow-artifacts:/<study>`` locations: a
run's artifacts are then ``<store>/artifacts/<study>/<run id>/artifacts/...``, addressed
relative to the store. ablate writes and reads those files itself (MLflow's client resolves
``mlflow-artifacts:`` only through a server), and ``ablate ui`` serves them with
``mlflow ui --artifacts-destination <store>/artifacts``, exactly as an MLflow server with an
artifact destination lays them out. Runs of older stores carry absolute ``file://`` URIs; when
their folder has moved they are found under the store's artifact folder by the same layout.
"""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

from ablate.stores import Stores

PROXY_SCHEME = "mlflow-artifacts:"


def experiment_location(stores: Stores, study: str) -> str | None:
    """The artifact location of a new experiment (None: the tracking server decides)."""
    return f"{PROXY_SCHEME}/{study}" if stores.artifact_root is not None else None


def local_dir(stores: Stores, artifact_uri: str) -> Path | None:
    """The local folder holding a run's artifacts, or None when a server keeps them."""
    root = stores.artifact_root
    if artifact_uri.startswith(PROXY_SCHEME):
        relative = artifact_uri.removeprefix(PROXY_SCHEME).lstrip("/")
        return root / relative if root is not None else None
    if artifact_uri.startswith("file:") or "://" not in artifact_uri:
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(artifact_uri).path))
        if path.exists() or root is None or len(path.parts) < 3:
            return path
        moved = root.joinpath(*path.parts[-3:])  # <study>/<run id>/artifacts
        return moved if moved.exists() else path
    return None


def write_text(folder: Path, name: str, text: str) -> None:
    """Write one artifact file (parents created)."""
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def write_bytes(folder: Path, name: str, data: bytes) -> None:
    """Write one binary artifact file (parents created)."""
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def copy_folder(folder: Path, source: Path) -> None:
    """Copy every file below ``source`` into the run's artifact folder."""
    shutil.copytree(source, folder, dirs_exist_ok=True)
