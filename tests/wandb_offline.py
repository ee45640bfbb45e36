"""Read a W&B offline run (``run-<id>.wandb``) back from disk: history, config and summary.

wandb >= 0.31 no longer ships a reader. The file is a LevelDB-style log: a 7-byte file header
(``:W&B``, magic 0xBEE1, version), then 32 KiB blocks of chunks, each with a 7-byte header
(CRC-32, length, type: full / first / middle / last), whose payloads are
``wandb_internal_pb2.Record`` protobufs.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK_SIZE = 32 * 1024
HEADER = struct.Struct("<IHB")  # crc32, length, chunk type
FILE_HEADER = struct.Struct("<4sHB")  # ":W&B", magic, version
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


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
        elif kind == "summary":
            run["summary"].update(_items(record.summary.update))
    return run
