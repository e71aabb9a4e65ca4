"""Training text from plain-text and JSONL files, streamed (never all in memory) and cut into batches.

A plain-text file gives one text per non-blank line; a `.jsonl` / `.json` file one JSON object per line
whose `text_field` (default "text") is the text. The stream cycles through the files in the given order,
epoch after epoch; its position is the number of texts taken, which is what a checkpoint records.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

import torch

logger = logging.getLogger(__name__)

__all__ = ["TextStream", "check_data_files", "global_batch_texts", "pad"]

JSONL_SUFFIXES = (".jsonl", ".json")


def iter_texts(path: Path, text_field: str = "text") -> Iterator[str]:
    """The texts of one file, in order."""
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if not jsonl:
                yield line
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not a JSON object ({e.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise ValueError(f"{path}:{number}: expected a JSON object with a string field {text_field!r}")
            if record[text_field].strip():
                yield record[text_field].strip()


def check_data_files(files: Sequence[str | os.PathLike], text_field: str = "text") -> list[Path]:
    """The files as Paths, after checking each exists and holds at least one text (ValueError if not)."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("data: give at least one text or JSONL file")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"data file not found: {path}")
        if next(iter_texts(path, text_field), None) is None:
            raise ValueError(f"data file {path} holds no text (empty, or only blank lines)")
    return paths


class TextStream:
    """Texts of `files`, cycled forever; `position` texts were taken so far (`skip` restores one)."""

    def __init__(self, files: Sequence[str | os.PathLike], text_field: str = "text"):
        self.files = check_data_files(files, text_field)
        self.text_field = text_field
        self.position = 0
        self._texts = self._cycle()
        self._pending: list[str] = []

    def _cycle(self) -> Iterator[str]:
        while True:
            for path in self.files:
                yield from iter_texts(path, self.text_field)

    def next(self) -> str:
        self.position += 1
        return self._pending.pop() if self._pending else next(self._texts)

    def unread(self, text: str) -> None:
        """Put back the text last taken (it comes again from `next`)."""
        self.position -= 1
        self._pending.append(text)

    def skip(self, n: int) -> None:
        """Take and drop n texts (resuming at a recorded position)."""
        for _ in range(n):
            self.next()


def global_batch_texts(stream: TextStream, tokenize, *, n_chunks: int, batch_size: int | None,
                       max_tokens: int | None) -> list[list[list[int]]]:
    """The token ids of one optimizer step's texts, cut into `n_chunks` micro-batches (processes ×
    accumulation steps), in stream order.

    With `batch_size`, each chunk holds that many texts. With `max_tokens` (a token budget per chunk),
    texts are taken while the padded size of the whole step, texts × longest, stays within
    `max_tokens * n_chunks` (at least one text per chunk), then dealt out in near-equal contiguous chunks.
    `tokenize(text) -> list[int]` truncates as the model needs.
    """
    if batch_size is not None:
        ids = [tokenize(stream.next()) for _ in range(batch_size * n_chunks)]
        return [ids[i * batch_size:(i + 1) * batch_size] for i in range(n_chunks)]
    ids, longest = [], 0
    while True:
        text = stream.next()
        seq = tokenize(text)
        grown = max(longest, len(seq))
        if len(ids) >= n_chunks and (len(ids) + 1) * grown > max_tokens * n_chunks:
            stream.unread(text)
            break
        ids.append(seq)
        longest = grown
    base, extra = divmod(len(ids), n_chunks)
    chunks, start = [], 0
    for i in range(n_chunks):
        size = base + (i < extra)
        chunks.append(ids[start:start + size])
        start += size
    return chunks


def pad(sequences: Sequence[Sequence[int]], pad_id: int, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (B, T) int64, right-padded to `length` (default: the longest)."""
    length = max(len(s) for s in sequences) if length is None else length
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    return ids, mask
