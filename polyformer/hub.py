"""Where files come from and how they are written: a local folder or a Hugging Face Hub repo id.

This is the only module that talks to the network, and only through `huggingface_hub` (its cache,
revisions, `HF_HUB_OFFLINE`). `resolve_file` is the one place every file read goes through (models in
PyTorch, TF and Flax, tokenizers, processors, configs):

- Containment: a file name with `..` or an absolute path is refused, and a file (or symlink) that
  resolves outside the folder or the Hub repo's cache folder is refused (`UnsafePathError`).
- Hub errors: a missing file (HTTP 404) is "absent"; any other HTTP error, a silent server or a dropped
  connection raises `HubError` naming the file and the status, for optional files too (a cached copy of
  that file for the revision is used instead, with a warning, when the server is down). Each request
  waits at most huggingface_hub's `HF_HUB_ETAG_TIMEOUT` (10 s unless set) and is tried
  `1 + HUB_RETRIES` times (`HUB_BACKOFF_S`, doubling, between tries); downloads use huggingface_hub's
  `HF_HUB_DOWNLOAD_TIMEOUT` per read and its resuming retries. `HF_ENDPOINT` and `HF_HUB_OFFLINE` are
  read when a file is resolved, not at import.
- A folder with an interrupted committed save (see `saving.py`) is read as the new save.

Writing goes through `atomic_path` (`write_atomically`, `write_json`): inside a `save_pretrained`, into its
save transaction (saving.py); elsewhere through a temporary file fsynced and renamed onto the target.
A written file gets the mode a plain `open(path, "w")` would give it (0o666 less the umask).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from typing import Any, Optional, Union

from . import saving

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

HUB_RETRIES = 2  # a request that times out, cannot connect or gets 408/429/5xx is tried this many times more
HUB_BACKOFF_S = 0.5  # wait before the first retry, doubled before each next one
_TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _looks_like_path(name: str) -> bool:
    """A name that cannot be a Hub id ("name" or "namespace/name") is meant as a folder."""
    return not _HUB_ID.match(name)


class InvalidFileError(OSError, ValueError):
    """A file that exists but does not hold what it should (bad JSON, truncated weights, ...)."""


class UnsafePathError(InvalidFileError):
    """A file name (or a symlink) that leads outside the folder or Hub repo it was read from."""


class HubError(OSError):
    """The Hub (or HF_ENDPOINT) failed to serve a file: an HTTP error other than 404, no answer in
    time, or a broken download."""


def check_file_name(filename: Any, what: str = "file name") -> str:
    """`filename` if it is a relative path that stays inside its folder; UnsafePathError otherwise."""
    if not isinstance(filename, str) or not filename or "\0" in filename:
        raise UnsafePathError(f"{what} must be a non-empty relative path, got {filename!r}")
    parts = re.split(r"[/\\]", filename)
    if os.path.isabs(filename) or filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", filename) \
            or ".." in parts:
        raise UnsafePathError(f"{what} {filename!r} is absolute or contains '..'; only files inside the folder "
                              "or repo are read")
    return filename


def is_inside(path: str, root: str) -> bool:
    """Whether `path` (resolved through symlinks) is `root` or inside it."""
    real, root = os.path.realpath(path), os.path.realpath(root)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _contained(path: str, root: str, filename: str, where: str) -> str:
    if not is_inside(path, root):
        raise UnsafePathError(f"{filename} in {where} resolves to {os.path.realpath(path)!r}, outside it "
                              "(a symlink or path leading out); refusing to read it")
    return path


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
    fetched through huggingface_hub. Returns None when the file is absent and `required` is False;
    raises FileNotFoundError when it is absent and required, UnsafePathError when it would lead
    outside the folder or repo, HubError when the Hub fails (see the module docstring).
    """
    name = os.fspath(path_or_repo_id)
    check_file_name(filename)
    if subfolder:
        check_file_name(subfolder, "subfolder")
    if os.path.isdir(name):
        return _from_folder(name, filename, subfolder, required)
    if os.path.isfile(name):
        raise NotADirectoryError(f"{name!r} is a file; expected a folder or a Hub repo id")
    if _looks_like_path(name):
        raise FileNotFoundError(f"no such folder: {name!r} (and it is not a Hub repo id)")
    return _from_hub(name, filename, subfolder=subfolder, revision=revision, cache_dir=cache_dir,
                     local_files_only=local_files_only, token=token, force_download=force_download,
                     required=required)


def _from_folder(name: str, filename: str, subfolder: str, required: bool) -> Optional[str]:
    folder = os.path.join(name, subfolder)
    pending = saving.pending_file(folder, filename)  # an interrupted save's new file, or "" if it removes it
    file = pending if pending else os.path.join(folder, filename)
    if pending != "" and os.path.isfile(file):
        return _contained(file, name, filename, f"folder {name!r}")
    if required:
        raise FileNotFoundError(f"{filename} not found in folder {folder!r}")
    return None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _from_hub(name: str, filename: str, *, subfolder: str, revision: Optional[str], cache_dir: Optional[PathLike],
              local_files_only: bool, token, force_download: bool, required: bool) -> Optional[str]:
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = os.environ.get("HF_ENDPOINT") or None  # read now, not when huggingface_hub was imported
    offline = local_files_only or constants.is_offline_mode() or _env_flag("HF_HUB_OFFLINE") \
        or _env_flag("TRANSFORMERS_OFFLINE")
    full = f"{subfolder.strip('/')}/{filename}" if subfolder else filename
    where = f"Hub repo {name!r} (revision {revision or 'main'})"
    storage = os.path.join(os.fspath(cache_dir or constants.HF_HUB_CACHE),
                           repo_folder_name(repo_id=name, repo_type="model"))
    if not offline and not force_download and revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        cached = huggingface_hub.try_to_load_from_cache(name, full, cache_dir=cache_dir, revision=revision)
        if isinstance(cached, str):  # a commit's files never change: no request needed
            return _contained(cached, storage, filename, where)
    if not offline:
        try:
            failure = _probe(name, full, revision=revision, token=token, endpoint=endpoint)
        except RevisionNotFoundError as err:
            raise FileNotFoundError(f"revision {revision!r} not found in Hub repo {name!r}") from err
        except (RepositoryNotFoundError, HFValidationError) as err:
            raise FileNotFoundError(f"{name!r} is neither a local folder nor a Hub repo id: {err}") from None
        if failure == "absent":
            if required:
                raise FileNotFoundError(f"{filename} not found in {where}")
            return None
        if failure is not None:
            cached = huggingface_hub.try_to_load_from_cache(name, full, cache_dir=cache_dir, revision=revision)
            if isinstance(cached, str) and not force_download:
                logger.warning("could not reach the Hub for %s (%s); using the cached copy %s", full, failure, cached)
                return _contained(cached, storage, filename, where)
            if cached is not None and not isinstance(cached, str) and not required:
                return None  # the cache knows the file does not exist
            raise HubError(f"could not download {full} from {where}: {failure}")
    try:
        path = huggingface_hub.hf_hub_download(
            name, filename, subfolder=subfolder or None, revision=revision, cache_dir=cache_dir,
            local_files_only=offline, token=token, force_download=force_download, endpoint=endpoint,
            etag_timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except LocalEntryNotFoundError as err:
        if offline and not required and _cached_repo_exists(name, cache_dir):
            return None
        if not offline:
            raise HubError(f"could not download {full} from {where}: {err}") from None
        raise FileNotFoundError(
            f"{name!r} is not a local folder, and {filename} is not in the Hub cache "
            f"(offline or local_files_only): {err}"
        ) from None
    except EntryNotFoundError:  # after LocalEntryNotFoundError, its subclass
        if required:
            raise FileNotFoundError(f"{filename} not found in {where}") from None
        return None
    except (RepositoryNotFoundError, HFValidationError) as err:
        raise FileNotFoundError(f"{name!r} is neither a local folder nor a Hub repo id: {err}") from None
    except RevisionNotFoundError as err:
        raise FileNotFoundError(f"revision {revision!r} not found in Hub repo {name!r}") from err
    except Exception as err:  # HTTP errors, consistency checks, dropped connections: name the file
        if isinstance(err, (ValueError, TypeError)) and not isinstance(err, OSError):
            raise
        raise HubError(f"could not download {full} from {where}: {_describe(err)}") from err
    return _contained(path, storage, filename, where)


def _describe(err: BaseException) -> str:
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"HTTP {status} ({text})" if status is not None else f"{type(err).__name__}: {text}"


def _probe(name: str, full: str, *, revision: Optional[str], token, endpoint: Optional[str]) -> Optional[str]:
    """Ask the Hub whether `full` exists, bounded in time: None when it does, "absent" on 404, else a
    description of the failure once the retries are spent. Repo and revision errors are raised."""
    import httpx2
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        FileMetadataError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url = hf_hub_url(name, full, revision=revision, endpoint=endpoint)
    timeout = constants.HF_HUB_ETAG_TIMEOUT
    failure = None
    for attempt in range(1 + HUB_RETRIES):
        if attempt:
            time.sleep(HUB_BACKOFF_S * 2 ** (attempt - 1))
        try:
            get_hf_file_metadata(url, token=token, timeout=timeout, endpoint=endpoint)
            return None
        except EntryNotFoundError:
            return "absent"
        except (RepositoryNotFoundError, RevisionNotFoundError):
            raise
        except HfHubHTTPError as err:
            status = err.response.status_code if err.response is not None else None
            if status == 404:
                return "absent"
            failure = _describe(err)
            if status not in _TRANSIENT_STATUS:
                raise HubError(f"could not download {full} from Hub repo {name!r}: {failure}") from None
        except httpx2.TimeoutException:
            failure = f"no answer within {timeout} s (HF_HUB_ETAG_TIMEOUT)"
        except (httpx2.TransportError, FileMetadataError) as err:
            failure = _describe(err)
    return f"{failure}, after {1 + HUB_RETRIES} tries"


def _cached_repo_exists(repo_id: str, cache_dir: Optional[PathLike]) -> bool:
    from huggingface_hub.constants import HF_HUB_CACHE

    folder = os.path.join(os.fspath(cache_dir or HF_HUB_CACHE), "models--" + repo_id.replace("/", "--"))
    return os.path.isdir(folder)


def resolve_named_file(path_or_repo_id: PathLike, value: Any, what: str, **hub_kwargs) -> Optional[str]:
    """A file that a loaded config names (tokenizer_config.json's `vocab_file`, ...), held to the same
    containment as `resolve_file`: a relative name is resolved inside the folder or repo; an absolute
    path is used only when it lies inside the folder; a path that does not exist (saved on another
    machine) gives None; anything else is an UnsafePathError naming `what`."""
    if not isinstance(value, str) or not value:
        return None
    name = os.fspath(path_or_repo_id)
    if not os.path.isabs(value):
        try:
            return resolve_file(name, check_file_name(value, what), required=False, **hub_kwargs)
        except UnsafePathError as err:
            raise UnsafePathError(f"{what} names {value!r}, outside {name!r}: {err}") from None
    if not os.path.exists(value):
        return None
    if os.path.isdir(name) and is_inside(value, name):
        return value
    raise UnsafePathError(f"{what} names {value!r}, which is outside {name!r}; refusing to read it")


def cache_hint(path: str) -> str:
    """For an error about a file that came from the Hub cache: how to replace it."""
    parts = os.path.abspath(path).split(os.sep)
    if "snapshots" in parts and any(p.startswith(("models--", "datasets--", "spaces--")) for p in parts):
        return (f" {path} is a cached download from the Hub; pass force_download=True to download it again "
                "(or delete it from the cache)")
    return ""


def read_json(path: PathLike, what: str = "file") -> dict:
    """The JSON object in `path`; a clear error when it is missing, not JSON, or not an object."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidFileError(f"{path} is not valid JSON: {err}.{cache_hint(path)}") from None
    except RecursionError:
        raise InvalidFileError(f"{path} is not valid JSON: it is nested too deeply.{cache_hint(path)}") from None
    if not isinstance(data, dict):
        raise InvalidFileError(f"{path} must hold a JSON object, got {type(data).__name__}.{cache_hint(path)}")
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
    """Write `data` to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


class atomic_path:
    """Context manager giving the path to write instead of `path`, so readers never see a partial file.

    Inside a save transaction for the folder (`saving.save_transaction`, opened by every
    save_pretrained) that is the file's place in the staging folder: it is installed with the rest of
    the save. Elsewhere it is a temporary file beside `path` (".polyformer-tmp-<name>.<random>", removed by
    the next save into the folder if a kill leaves it), fsynced and renamed onto `path` on success,
    deleted on failure. Either way the file gets the mode `open(path, "w")` would give it.
    """

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        self.tx = None

    def __enter__(self) -> str:
        self.tx = saving.transaction_for(self.path)
        if self.tx is not None:
            self.tmp = self.tx.staged_path(self.path)
            return self.tmp
        folder, base = os.path.split(os.path.abspath(self.path))
        fd, self.tmp = tempfile.mkstemp(prefix=f"{saving.TEMP_PREFIX}{base}.", dir=folder)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.chmod(self.tmp, 0o666 & ~_umask())
            if self.tx is None:
                saving.fsync_file(self.tmp)
                os.replace(self.tmp, self.path)
                saving.fsync_folder(os.path.dirname(os.path.abspath(self.path)))
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)


def _umask() -> int:
    umask = os.umask(0)  # the only way to read it is to set it
    os.umask(umask)
    return umask
