"""Files a data module reads: located by path, in the cache, or downloaded and kept only if its SHA-256 matches."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

from rnnbench.errors import DataError, require

log = logging.getLogger(__name__)


def cache_path(cache_dir: str, *parts: str) -> Path:
    """``cache_dir``/``parts``, refusing a ``cache_dir`` (or a folder below it) that exists as a file: it could never
    hold the cached copy, and the job would fail only when it tried to write one."""
    path = Path(cache_dir).expanduser()
    for folder in [path, *(path.joinpath(*parts[:i]) for i in range(1, len(parts)))]:
        require(not folder.exists() or folder.is_dir(), "cache_dir", cache_dir,
                f"a directory ({folder} is a file)" if folder != path else "a directory, or where one can be made "
                                                                           "(it is a file)")
    return path.joinpath(*parts)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, destination: Path, sha256: str) -> Path:
    """Fetch ``url`` to ``destination`` only if its SHA-256 matches; nothing is left behind otherwise."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", url, destination)
    fd, partial = tempfile.mkstemp(dir=destination.parent, prefix=destination.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            out.write(response.read())
        actual = sha256_of(Path(partial))
        if actual != sha256:
            raise DataError(f"data.url={url!r} served a file with sha256 {actual}, expected {sha256}; not used")
        os.replace(partial, destination)
    except OSError as error:
        raise DataError(f"data.url={url!r} could not be downloaded: {error}") from error
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return destination
