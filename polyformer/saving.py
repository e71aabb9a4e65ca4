"""Atomic saves: a whole `save_pretrained` lands in its folder as one step, whatever kills it.

A save is a transaction on its folder (`save_transaction`), used by every `save_pretrained` (PyTorch,
TF and Flax models, configs, generation configs, tokenizers, image processors, processors):

1. Clean up after earlier killed saves: a committed save not fully installed is finished (rolled
   forward); staging folders and polyformer temporaries are removed. Nothing else in the folder is
   touched: the folder may hold the user's own files.
2. Every file is written into a private staging folder inside the save folder
   (`.polyformer-staging-XXXX/`), and files of the old save that the new one replaces by other
   names (old shards, an index no longer needed) are only noted.
3. Commit: each staged file and the staging folder are fsynced, a manifest (files to install, files to
   remove) is written and fsynced, and the staging folder is renamed `.polyformer-commit` — one atomic
   rename, the commit point — then the save folder is fsynced.
4. Install: each staged file is renamed onto its final name, the noted old files are removed, the
   folder is fsynced, and the commit folder is renamed away and deleted.

A kill before the commit point leaves the old save as it was (plus a staging folder the next save
removes). A kill after it leaves a commit folder: the file resolver (`hub.resolve_file`) reads every
file the manifest names from the commit folder while it is there, and treats the files it removes as
gone, so loading sees the new save complete; the next save into the folder finishes the install.
Readers other than polyformer (or `ls`) may see a mix until then. One save at a time per folder.

`_fault_hook` is for tests only: when set, it is called with the name of each step
("staging:<name>" as a file starts to be written, "staged", "committed", "installed:<name>",
"removed:<name>", "done") and may kill the process there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from typing import Callable, Dict, Iterator, List, Optional

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".polyformer-staging-"
COMMIT_NAME = ".polyformer-commit"
MANIFEST = ".manifest.json"
TEMP_PREFIX = ".polyformer-tmp-"  # single files written outside a transaction (`hub.atomic_path`)

# Temporaries of earlier polyformer versions: ".<name>.<8 random characters>.tmp" beside <name>.
_OLD_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
_OUR_NAMES = re.compile(r"^(.*\.json|.*\.safetensors|.*\.bin|.*\.msgpack|.*\.h5|.*\.model|.*\.txt)$")

_fault_hook: Optional[Callable[[str], None]] = None
_local = threading.local()


def _fault(point: str) -> None:
    if _fault_hook is not None:
        _fault_hook(point)


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(path: str) -> None:
    """Make renames and removals in `path` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _active() -> Dict[str, "SaveTransaction"]:
    if not hasattr(_local, "active"):
        _local.active = {}
    return _local.active


def transaction_for(path: str) -> Optional["SaveTransaction"]:
    """The open transaction of this thread whose folder holds `path`, if any."""
    active = _active()
    if not active:
        return None
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for root, tx in active.items():
        if folder == root or folder.startswith(root + os.sep):
            return tx
    return None


class SaveTransaction:
    """The files one save writes into `folder`; see the module docstring."""

    def __init__(self, folder: str):
        self.folder = folder
        self.real = os.path.realpath(folder)
        self.staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)
        self.install: List[str] = []
        self.remove: List[str] = []

    def _name(self, path: str) -> str:
        folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        rel = os.path.relpath(os.path.join(folder, os.path.basename(path)), self.real)
        return rel.replace(os.sep, "/")

    def staged_path(self, path: str) -> str:
        """Where to write the file that will become `path` (inside this transaction's folder)."""
        name = self._name(path)
        _fault(f"staging:{name}")
        if name not in self.install:
            self.install.append(name)
        if name in self.remove:
            self.remove.remove(name)
        staged = os.path.join(self.staging, *name.split("/"))
        os.makedirs(os.path.dirname(staged), exist_ok=True)
        return staged

    def adopt(self, staged: str) -> str:
        """Register a file something else wrote into `self.staging`; returns its final path."""
        name = os.path.relpath(staged, self.staging).replace(os.sep, "/")
        if name not in self.install:
            self.install.append(name)
        return os.path.join(self.folder, *name.split("/"))

    def delete(self, path: str) -> None:
        """Remove `path` (a file of the old save) when this save is installed."""
        name = self._name(path)
        if name not in self.install and name not in self.remove:
            self.remove.append(name)

    def commit(self) -> None:
        self.install = [n for n in self.install if os.path.lexists(os.path.join(self.staging, *n.split("/")))]
        for name in self.install:
            fsync_file(os.path.join(self.staging, *name.split("/")))
        manifest = os.path.join(self.staging, MANIFEST)
        with open(manifest, "w", encoding="utf-8") as f:
            json.dump({"install": self.install, "remove": self.remove}, f)
            f.flush()
            os.fsync(f.fileno())
        fsync_folder(self.staging)
        _fault("staged")
        os.rename(self.staging, os.path.join(self.folder, COMMIT_NAME))
        fsync_folder(self.folder)
        _fault("committed")
        install_commit(self.folder)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def read_manifest(commit: str) -> Optional[dict]:
    """The manifest of a commit folder, or None when it holds none (then it is ignored)."""
    try:
        with open(os.path.join(commit, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    return {"install": [n for n in manifest.get("install", []) if _safe_name(n)],
            "remove": [n for n in manifest.get("remove", []) if _safe_name(n)]}


def _safe_name(name) -> bool:
    return isinstance(name, str) and not os.path.isabs(name) and ".." not in name.split("/")


def install_commit(folder: str) -> None:
    """Finish a committed save: rename its files into place, remove the files it replaces, drop the
    commit folder. Safe to run again after a kill at any point."""
    commit = os.path.join(folder, COMMIT_NAME)
    manifest = read_manifest(commit)
    if manifest is not None:
        for name in manifest["install"]:
            src = os.path.join(commit, *name.split("/"))
            if os.path.lexists(src):
                dst = os.path.join(folder, *name.split("/"))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.replace(src, dst)
                _fault(f"installed:{name}")
        for name in manifest["remove"]:
            path = os.path.join(folder, *name.split("/"))
            if os.path.isfile(path) or os.path.islink(path):
                os.remove(path)
                _fault(f"removed:{name}")
        fsync_folder(folder)
    done = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)
    os.rename(commit, os.path.join(done, "old"))  # the commit point of the clean-up
    fsync_folder(folder)
    shutil.rmtree(done, ignore_errors=True)
    _fault("done")


def recover(folder: str) -> None:
    """Clean up after saves killed in `folder`: finish a committed one, remove staging folders and
    polyformer temporaries. Files that are not polyformer's are never touched."""
    if os.path.isdir(os.path.join(folder, COMMIT_NAME)):
        logger.info("finishing an interrupted save in %s", folder)
        install_commit(folder)
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if entry.startswith(STAGING_PREFIX) and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.isfile(path) and not os.path.islink(path) and _is_our_temporary(entry):
            os.remove(path)


def _is_our_temporary(entry: str) -> bool:
    if entry.startswith(TEMP_PREFIX):
        return True
    old = _OLD_TEMP.match(entry)
    return bool(old and _OUR_NAMES.match(old.group("name")))


def pending_file(folder: str, filename: str) -> Optional[str]:
    """For the resolver: where `filename` of `folder` is while a committed save is being installed —
    its path in the commit folder, "" when that save removes it, None when the commit does not concern
    it (or there is no commit)."""
    commit = os.path.join(folder, COMMIT_NAME)
    if not os.path.isdir(commit):
        return None
    manifest = read_manifest(commit)
    if manifest is None:
        return None
    name = filename.replace(os.sep, "/")
    if name in manifest["install"]:
        staged = os.path.join(commit, *name.split("/"))
        return staged if os.path.isfile(staged) else None  # already renamed into place
    if name in manifest["remove"]:
        return ""
    return None


@contextlib.contextmanager
def save_transaction(folder) -> Iterator[SaveTransaction]:
    """Make every write into `folder` inside the block one atomic save (see the module docstring).
    Nested calls for the same folder join the outer transaction."""
    folder = os.fspath(folder)
    if os.path.isfile(folder):
        raise NotADirectoryError(f"save_directory {folder!r} is a file; expected a folder")
    os.makedirs(folder, exist_ok=True)
    key = os.path.realpath(folder)
    active = _active()
    if key in active:
        yield active[key]
        return
    recover(folder)
    tx = SaveTransaction(folder)
    active[key] = tx
    try:
        yield tx
    except BaseException:
        tx.abort()
        raise
    finally:
        del active[key]
    tx.commit()


def remove_file(path: str) -> None:
    """Remove a file of an earlier save: at install time inside a transaction, now otherwise."""
    tx = transaction_for(path)
    if tx is not None:
        tx.delete(path)
    elif os.path.lexists(path):
        os.remove(path)


def write_with(folder, write: Callable[[str], List[str]]) -> List[str]:
    """Let `write(directory)` (a library call that writes files into a folder it is given, e.g. a Rust
    tokenizer model's `save`) write into this save's staging folder; its files are installed with the
    save. Returns their final paths in `folder`."""
    with save_transaction(folder) as tx:
        return [tx.adopt(path) for path in write(tx.staging)]
