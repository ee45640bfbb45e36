"""Files a data module reads: located by path, in the cache, or downloaded and kept only if its SHA-256 matches."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

from rnnbench.errors import ConfigError, DataError, require

log = logging.getLogger(__name__)


CACHE_VARIABLE = "RNNBENCH_CACHE"


def default_cache_dir() -> str:
    """Where downloads and reference results are kept unless ``data.cache_dir`` says otherwise: ``$RNNBENCH_CACHE``
    (unless empty), else ``~/.cache/rnnbench`` (the data configs read the same variable; an empty ``cache_dir`` means
    this default too)."""
    return os.environ.get(CACHE_VARIABLE) or "~/.cache/rnnbench"


def cache_path(cache_dir: str | None, *parts: str) -> Path:
    """``cache_dir``/``parts`` (``cache_dir`` null or empty: :func:`default_cache_dir`), refusing a ``cache_dir`` (or
    a folder below it) that exists as a file: it could never hold the cached copy, and the job would fail only when
    it tried to write one."""
    require(cache_dir is None or isinstance(cache_dir, str), "cache_dir", cache_dir,
            "null or empty ($RNNBENCH_CACHE, else ~/.cache/rnnbench; the configs read RNNBENCH_CACHE, which may be "
            "set empty) or a directory")
    path = Path(cache_dir or default_cache_dir()).expanduser()
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
    """Fetch ``url`` to ``destination`` only if its SHA-256 matches; nothing is written otherwise (not even the
    folder). The file is held in memory until verified: the sets fetched so are a few MB."""
    log.info("downloading %s to %s", url, destination)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except (OSError, ValueError) as error:  # URLError, a timeout, or a url urllib cannot parse
        raise DataError(f"data.url={url!r} could not be downloaded: {error}") from error
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise DataError(f"data.url={url!r} served a file with sha256 {actual}, expected {sha256}; not used")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=destination.parent, prefix=destination.name, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(partial, destination)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    except OSError as error:
        raise DataError(f"data.url={url!r} was downloaded but could not be kept in {destination.parent}: "
                        f"{error}") from error
    return destination


def cached_or_downloaded(cache_file: Path, url: str | None, sha256: str | None, what: str) -> Path:
    """``cache_file`` when it holds the file (with ``sha256``, unless None), else the file downloaded there from
    ``url`` and verified. Called as the data module is built, so the launch path fetches the file once, before
    any job; where there is nothing to download it with, or it cannot be fetched (an offline machine), a one-line
    ConfigError on ``path`` says which file to give."""
    if cache_file.is_file() and (sha256 is None or sha256_of(cache_file) == sha256):
        return cache_file
    where = f"the path of a local copy of {what} (sha256 {sha256})"
    require(url is not None and sha256 is not None, "path", None,
            f"{where}: it is not in {cache_file.parent} and there is no url and sha256 to download it with")
    try:
        return download(url, cache_file, sha256)
    except DataError as error:
        raise ConfigError("path", None, f"{where}: it is not in {cache_file.parent} and could not be downloaded "
                                        f"({str(error).split(': ', 1)[-1]})") from None
