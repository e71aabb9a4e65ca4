"""One rule for files that exist but cannot be read as what they should be.

A corrupt tokenizer.json makes the `tokenizers` library raise `Exception: EOF while parsing...` (or panic,
with a BaseException), a truncated tokenizer.model makes sentencepiece raise RuntimeError, a vocab.txt in
Latin-1 raises UnicodeDecodeError, and deeply nested JSON raises RecursionError. `reading(path, what)`
turns each of these into an `InvalidFileError` (an OSError and a ValueError) naming the file and the
problem, so callers catch one type and users learn which file to fix.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Union

from .hub import InvalidFileError

_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError, InvalidFileError, FileNotFoundError)


@contextmanager
def reading(path: Union[str, os.PathLike], what: str) -> Iterator[None]:
    """Run the body (which reads `path`); any failure becomes InvalidFileError("<path> is not a valid <what>:
    <the problem>"). Interrupts, a missing file and errors that already name the file pass through."""
    try:
        yield
    except _PASS_THROUGH:
        raise
    except RecursionError:
        raise InvalidFileError(f"{os.fspath(path)} is not a valid {what}: it is nested too deeply") from None
    except UnicodeDecodeError as err:
        raise InvalidFileError(f"{os.fspath(path)} is not a valid {what}: it is not UTF-8 text ({err})") from None
    except BaseException as err:  # noqa: B036 - a Rust panic in `tokenizers` is a BaseException
        raise InvalidFileError(f"{os.fspath(path)} is not a valid {what}: {type(err).__name__}: {err}") from err
