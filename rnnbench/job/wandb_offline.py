"""Read a W&B offline run (``run-<id>.wandb``) back from disk: history, config and summary; and continue one.

A resumed job's offline run is one W&B run (:func:`continue_offline_run`). wandb (0.31) cannot resume an offline
run: it starts a new segment with the same id, whose ``_step`` restarts at 0, and ``wandb sync`` of the second
segment replaces the first (wandb/wandb#3841, #5865; offline resume is the open wandb/wandb#12110). So the new
segment starts with the earlier one's history up to the checkpoint, and the earlier segment moves to
``wandb/superseded/``, kept but out of the way of ``wandb sync <job>/wandb/offline-run-*``.

wandb >= 0.31 no longer ships a reader. The file is a LevelDB-style log: a 7-byte file header
(``:W&B``, magic 0xBEE1, version), then 32 KiB blocks of chunks, each with a 7-byte header
(CRC-32, length, type: full / first / middle / last), whose payloads are
``wandb_internal_pb2.Record`` protobufs.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK_SIZE = 32 * 1024
HEADER = struct.Struct("<IHB")  # crc32, length, chunk type
FILE_HEADER = struct.Struct("<4sHB")  # ":W&B", magic, version
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

log = logging.getLogger(__name__)


def read_chunks(data: bytes) -> Iterator[bytes]:
    """Yield each whole record's bytes, joining chunks that span blocks."""
    ident, magic, _ = FILE_HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError("not a W&B run file")
    position, pending = FILE_HEADER.size, b""
    while position + HEADER.size <= len(data):
        room = BLOCK_SIZE - position % BLOCK_SIZE
        if room < HEADER.size:  # the block's tail is padding
            position += room
            continue
        checksum, length, kind = HEADER.unpack_from(data, position)
        if kind == 0 and length == 0:
            position += room
            continue
        start = position + HEADER.size
        if start + length > len(data):  # the last record of a run killed while writing it: keep what came before
            return
        chunk = data[start:start + length]
        if zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != checksum:
            raise ValueError(f"corrupt W&B record at byte {position}")
        position = start + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


def _items(items: Any) -> dict[str, Any]:
    return {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in items}


def read_offline_run(path: Path) -> dict[str, Any]:
    """Parse ``path`` (a ``run-*.wandb`` file or the offline run dir holding one).

    Returns ``{"history": [row, ...], "config": {...}, "summary": {...}}`` with each history row
    a dict of the values logged at one step (``_step`` included).
    """
    from wandb.proto import wandb_internal_pb2

    path = Path(path)
    if path.is_dir():
        path = next(path.glob("run-*.wandb"))
    run: dict[str, Any] = {"history": [], "config": {}, "summary": {}}
    for chunk in read_chunks(path.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(chunk)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            run["history"].append(_items(record.history.item))
        elif kind == "config":
            run["config"].update(_items(record.config.update))
        elif kind == "run":  # wandb.init(config=...) travels in the run record
            run["config"].update(_items(record.run.config.update))
        elif kind == "summary":
            run["summary"].update(_items(record.summary.update))
            for item in record.summary.remove:
                run["summary"].pop(item.key or "/".join(item.nested_key), None)
    return run


SUPERSEDED = "superseded"  # where a resumed job's earlier W&B offline segments are kept


SEGMENT = re.compile(r"offline-run-\d{8}_\d{6}-(?P<id>[^-]+)(-\d+)?")  # wandb adds -1, ... within one second


def segment_run_id(segment: Path) -> str | None:
    """The W&B run id of an offline segment dir (``offline-run-<date>_<time>-<id>``, or ``...-<id>-1`` when wandb
    started two segments of one run within a second); None for another dir."""
    match = SEGMENT.fullmatch(segment.name)
    return match.group("id") if match else None


def _replayable(row: dict[str, Any]) -> dict[str, Any]:
    """The values of a history row that can be logged again: not W&B's own keys (``_step``, ``_runtime``), not a
    table or chart, which the reader gives as flat keys beside its ``<key>/_type`` (its file belongs to the earlier
    segment; the job logs its charts again at its end)."""
    media = tuple(key[:-len("_type")] for key in row if key.endswith("/_type"))
    return {key: value for key, value in row.items()
            if not key.startswith("_") and not key.startswith(media) and not isinstance(value, dict)}


def continue_offline_run(run: Any, resume_step: int) -> int:
    """Start ``run`` (the resumed job's new offline segment) with the history of the job's earlier segments of the
    same run id (``<job>/wandb/offline-run-*-<id>`` other than ``run``'s own: :func:`segment_run_id`): the rows of the newest one (which, if
    itself resumed, holds the ones before it) at ``trainer/global_step`` <= ``resume_step`` (what the checkpoint had
    seen; the rows after it the job logs again), in order; then move every earlier segment into
    ``wandb/superseded/``. Returns the rows replayed (0 when there is no readable earlier segment)."""
    current = Path(run.dir).parent  # <job>/wandb/offline-run-<time>-<id>
    earlier = sorted(d for d in current.parent.glob("offline-run-*") if d != current and d.is_dir()
                     and segment_run_id(d) == run.id)
    if not earlier:
        return 0
    try:
        history = read_offline_run(earlier[-1])["history"]
    except (OSError, ValueError, StopIteration) as error:
        log.warning("rnnbench: warning: the earlier W&B segment %s is unreadable (%s); the resumed run's W&B history "
                    "starts at step %d", earlier[-1], error, resume_step)
        history = []
    replayed = 0
    for row in history:
        step = row.get("trainer/global_step")
        values = _replayable(row)
        if isinstance(step, (int, float)) and step <= resume_step and len(values) > 1:
            run.log(values)
            replayed += 1
    _move_aside(earlier)
    return replayed


def supersede_segments(wandb_dir: Path) -> int:
    """Move every offline segment in ``wandb_dir`` into ``superseded/``: a job that starts again from step 0 (killed
    before its first checkpoint) is a new run, and its earlier segment must not be synced beside it as another
    seed. Returns how many were moved."""
    segments = sorted(d for d in wandb_dir.glob("offline-run-*") if d.is_dir()) if wandb_dir.is_dir() else []
    _move_aside(segments)
    return len(segments)


def _move_aside(segments: list[Path]) -> None:
    """Move offline segments (``<job>/wandb/offline-run-*``) into their ``wandb/superseded/``."""
    import shutil

    for segment in segments:
        superseded = segment.parent / SUPERSEDED
        superseded.mkdir(exist_ok=True)
        shutil.move(str(segment), str(superseded / segment.name))
