"""Where files come from and how they are written: a local folder or a Hugging Face Hub repo id.

This is the only module that talks to the network, and only through `huggingface_hub` (its cache,
`HF_HUB_OFFLINE`, revisions). Writing goes through `atomic_path` (`write_atomically`, `write_json`) so
that a failed save never leaves a partial file, and a written file gets the mode a plain `open(path, "w")`
would give it (0o666 less the umask), not the 0o600 of a temporary file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any, Optional, Union

PathLike = Union[str, os.PathLike]


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _looks_like_path(name: str) -> bool:
    """A name that cannot be a Hub id ("name" or "namespace/name") is meant as a folder."""
    return not _HUB_ID.match(name)


def resolve_file(
    path_or_repo_id: PathLike,
    filename: str,
    *,
    cache_dir: Optional[PathLike] = None,
    revision: Optional[str] = None,
    local_files_only: bool = False,
    token: Optional[Union[str, bool]] = None,
    force_download: bool = False,
    subfolder: str = "",
    required: bool = True,
) -> Optional[str]:
    """Local path of `filename` inside a folder or a Hub repo.

    A name that is an existing folder is read from disk. Anything else is taken as a Hub id and
    fetched through huggingface_hub (which honours HF_HUB_OFFLINE and its cache). Returns None when the
    file is absent and `required` is False; raises a clear error otherwise.
    """
    name = os.fspath(path_or_repo_id)
    if os.path.isdir(name):
        file = os.path.join(name, subfolder, filename)
        if os.path.isfile(file):
            return file
        if required:
            raise FileNotFoundError(f"{filename} not found in folder {os.path.join(name, subfolder)!r}")
        return None
    if os.path.isfile(name):
        raise NotADirectoryError(f"{name!r} is a file; expected a folder or a Hub repo id")
    if _looks_like_path(name):
        raise FileNotFoundError(f"no such folder: {name!r} (and it is not a Hub repo id)")

    import huggingface_hub
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return huggingface_hub.hf_hub_download(
            name,
            filename,
            subfolder=subfolder or None,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
            force_download=force_download,
        )
    except LocalEntryNotFoundError as err:
        if not required and _cached_repo_exists(name, cache_dir):
            return None
        raise FileNotFoundError(
            f"{name!r} is not a local folder, and {filename} is not in the Hub cache "
            f"(offline or local_files_only): {err}"
        ) from None
    except EntryNotFoundError:  # after LocalEntryNotFoundError, its subclass
        if required:
            raise FileNotFoundError(f"{filename} not found in Hub repo {name!r} (revision {revision or 'main'})") from None
        return None
    except (RepositoryNotFoundError, HFValidationError) as err:
        raise FileNotFoundError(f"{name!r} is neither a local folder nor a Hub repo id: {err}") from None
    except RevisionNotFoundError as err:
        raise FileNotFoundError(f"revision {revision!r} not found in Hub repo {name!r}") from err


def _cached_repo_exists(repo_id: str, cache_dir: Optional[PathLike]) -> bool:
    from huggingface_hub.constants import HF_HUB_CACHE

    folder = os.path.join(os.fspath(cache_dir or HF_HUB_CACHE), "models--" + repo_id.replace("/", "--"))
    return os.path.isdir(folder)


class InvalidFileError(OSError, ValueError):
    """A file that exists but does not hold what it should (bad JSON, truncated weights, ...)."""


def read_json(path: PathLike, what: str = "file") -> dict:
    """The JSON object in `path`; a clear error when it is missing, not JSON, or not an object."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidFileError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise InvalidFileError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def prepare_save_directory(save_directory: PathLike, push_to_hub: bool = False) -> str:
    """The opening of a `save_pretrained`: refuse `push_to_hub=True` (`push_to_hub()` uploads a saved copy),
    create the folder if needed (a file in its place is a NotADirectoryError); returns it as a str."""
    if push_to_hub:
        raise NotImplementedError("save_pretrained(push_to_hub=True) is not supported; call push_to_hub(repo_id) instead")
    save_directory = os.fspath(save_directory)
    if os.path.isfile(save_directory):
        raise NotADirectoryError(f"save_directory {save_directory!r} is a file; expected a folder")
    os.makedirs(save_directory, exist_ok=True)
    return save_directory


def write_json(path: PathLike, value: Any) -> None:
    """Write `value` as sorted, indented JSON (as transformers does), atomically."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomically(path, text.encode("utf-8"))


def write_atomically(path: PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


class atomic_path:
    """Context manager giving a temporary path beside `path`; renamed onto `path` on success,
    deleted on failure, so readers never see a partial file."""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)

    def __enter__(self) -> str:
        folder, base = os.path.split(os.path.abspath(self.path))
        fd, self.tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)


def _umask() -> int:
    umask = os.umask(0)  # the only way to read it is to set it
    os.umask(umask)
    return umask
