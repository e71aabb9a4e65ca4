"""Labelled examples from CSV or JSONL files, and their split into data-parallel batches (the fine-tuning
examples under examples/ use both)."""

from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path
from typing import Iterator

__all__ = ["read_records", "shard_batches"]


def read_records(path: str | os.PathLike, required: tuple[str, ...] = ()) -> list[dict]:
    """The rows of a `.csv` (header line, then rows) or `.jsonl` / `.json` (one object a line) file as dicts;
    raises ValueError when the file holds none or a row lacks one of `required`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    elif path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{number}: not JSON ({e.msg})") from None
    else:
        raise ValueError(f"{path}: expected a .csv or .jsonl file")
    if not rows:
        raise ValueError(f"data file {path} holds no examples")
    for number, row in enumerate(rows, 1):
        missing = [key for key in required if not isinstance(row, dict) or key not in row]
        if missing:
            raise ValueError(f"{path}: example {number} lacks {', '.join(missing)} (has {', '.join(row) if isinstance(row, dict) else type(row).__name__})")
    return rows


def shard_batches(n: int, batch_size: int, *, world_size: int = 1, rank: int = 0, seed: int = 0,
                  epoch: int = 0, shuffle: bool = True) -> Iterator[list[int]]:
    """Indices of this process's share of each global batch (`batch_size × world_size` examples, shuffled
    per epoch with the same seed on every process); the last, short global batch is dealt out too, and a
    process whose share is empty gets the batch's first index (so every process steps together)."""
    order = list(range(n))
    if shuffle:
        random.Random(seed * 100_003 + epoch).shuffle(order)
    step = batch_size * world_size
    for start in range(0, n, step):
        chunk = order[start:start + step]
        mine = chunk[rank::world_size]
        yield mine or chunk[:1]
