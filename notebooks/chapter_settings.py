"""Settings shared by the chapter notebooks (imported from their first cell)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path | None:
    """$XPNET_DATA_DIR, else ../shared/data beside the repository, if present.

    None lets the loader use the user cache and download what is missing.
    """
    if os.environ.get("XPNET_DATA_DIR"):
        return Path(os.environ["XPNET_DATA_DIR"])
    for candidate in (Path("../../shared/data"), Path("../shared/data")):
        if candidate.is_dir():
            return candidate.resolve()
    return None
