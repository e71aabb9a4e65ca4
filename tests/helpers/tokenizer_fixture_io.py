"""Plain-JSON encoding of tokenizer call arguments and results, for the tokenizer fixtures.

Shared by `scripts/fixtures/make_tokenizer_fixtures.py` and `make_decoder_tokenizer_fixtures.py` (run with
transformers 4.37.2, the oracle) and the tests (run with polyformer), so both sides run and read the very
same steps and files. It imports neither transformers nor polyformer, and no tensor library at import time.
Also here: saved folders stored compactly (`shrink_saved_folder` / `write_saved_folder`), texts stored
once and referenced from steps (`expand_refs`), and the comparison of results (`same`, `check`).

Encoded forms (anything else is plain JSON):
- a `BatchEncoding`:   {"__encoding__": {key: value, ...}}   (its `.data`, keys in order)
- an array / tensor:   {"__array__": "np" | "pt", "dtype": "int64", "shape": [2, 7], "data": [[...]]}
- an `AddedToken`:     {"__added_token__": {"content": ..., "single_word": ..., "lstrip": ..., ...}}
- an exception:        {"__error__": "ValueError", "message": "..."}   (tests compare the type only)
- a tuple:             a list (JSON has no tuples; tokenizers accept both)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable, Mapping


def to_json(value: Any) -> Any:
    """Turn a tokenizer result (or argument) into plain JSON values, as described above."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, BaseException):
        return {"__error__": type(value).__name__, "message": str(value)}
    if hasattr(value, "data") and hasattr(value, "encodings"):  # BatchEncoding (reference or polyformer)
        return {"__encoding__": {key: to_json(item) for key, item in value.data.items()}}
    if hasattr(value, "content") and hasattr(value, "__getstate__") and hasattr(value, "single_word"):
        return {"__added_token__": dict(value.__getstate__())}
    kind = _array_kind(value)
    if kind is not None:
        dtype = str(value.dtype).replace("torch.", "")
        return {"__array__": kind, "dtype": dtype, "shape": list(value.shape), "data": to_json(value.tolist())}
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return value.item()
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__} for a fixture")


def _array_kind(value: Any) -> str | None:
    module = type(value).__module__
    if module == "numpy" and type(value).__name__ == "ndarray":
        return "np"
    if module.startswith("torch") and type(value).__name__ == "Tensor":
        return "pt"
    return None


def from_json(value: Any, added_token: Callable[..., Any]) -> Any:
    """Inverse of `to_json` for call arguments: rebuild AddedToken objects with `added_token(**state)`."""
    if isinstance(value, list):
        return [from_json(item, added_token) for item in value]
    if isinstance(value, dict):
        if "__added_token__" in value:
            return added_token(**value["__added_token__"])
        return {key: from_json(item, added_token) for key, item in value.items()}
    return value


def run_step(tok: Any, step: Mapping[str, Any], added_token: Callable[..., Any]) -> Any:
    """Run one fixture step on `tok` and return its JSON-encoded result (an exception is a result too).

    A step is {"set": attr, "value": v}, {"get": attr}, or {"call": method, "args": [...], "kwargs": {...}}
    with optional "then": [[method, arg], ...] called on the returned encoding (e.g. ["word_ids", 0]).
    """
    try:
        if "set" in step:
            setattr(tok, step["set"], from_json(step["value"], added_token))
            return None
        if "get" in step:
            return to_json(getattr(tok, step["get"]))
        out = getattr(tok, step["call"])(*from_json(step.get("args", []), added_token),
                                          **from_json(step.get("kwargs", {}), added_token))
        if "then" not in step:
            return to_json(out)
        then = []
        for method, arg in step["then"]:
            try:
                then.append(to_json(getattr(out, method)(arg)))
            except Exception as err:  # noqa: BLE001 (recorded, then compared by type)
                then.append(to_json(err))
        return {"result": to_json(out), "then": then}
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:  # noqa: BLE001 (the Rust backend's panics are BaseExceptions)
        return to_json(err)


def cached_maker(build: Callable[[str, str], Any]) -> Callable[..., Any]:
    """`make(spec_name, kind, fresh=False)`: `build(spec_name, kind)`, shared between calls unless fresh."""
    cache: dict = {}

    def make(name: str, kind: str, fresh: bool = False):
        if fresh:
            return build(name, kind)
        if (name, kind) not in cache:
            cache[name, kind] = build(name, kind)
        return cache[name, kind]

    return make


def fixture_path(name: str, fixture_dir: Path, folders: Mapping[str, Path]) -> str:
    """`vocab.txt` lies in the fixture folder; `<folder>/file` in the saved folder of that name."""
    if name.startswith("<"):
        folder, file = name[1:].split(">/")
        return str(Path(folders[folder]) / file)
    return str(Path(fixture_dir) / name)


def build_tokenizer(spec: Mapping[str, Any], cls: Any, fixture_dir: Path, folders: Mapping[str, Path],
                    added_token: Callable[..., Any]) -> Any:
    """A tokenizer as a cases.json spec says: {"load": "init", "files": {...}, "kwargs": {...}} or
    {"load": "from_pretrained", "folder": name, "kwargs": {...}}."""
    if spec["load"] == "init":
        files = {arg: fixture_path(name, fixture_dir, folders) for arg, name in spec.get("files", {}).items()}
        return cls(**files, **from_json(spec["kwargs"], added_token))
    return cls.from_pretrained(str(folders[spec["folder"]]), **spec["kwargs"])


def materialize(files: Mapping[str, Any], folder: Path, vocab_file: Path) -> Path:
    """Write a saved folder recorded in cases.json; tokenizer.json gets its vocabulary back from vocab.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = vocab_file.read_text(encoding="utf-8")
    for name, content in files.items():
        if "same_as" in content:
            text = vocab
        elif "json" in content:
            data = copy.deepcopy(content["json"])
            data["model"]["vocab"] = {token: i for i, token in enumerate(vocab.split("\n")[:-1])}
            text = json.dumps(data, ensure_ascii=False)
        else:
            text = content["text"]
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def shrink_saved_folder(folder: Path, fixture_dir: Path) -> dict:
    """The files of a saved tokenizer folder as a cases.json stores them: a file equal to the fixture
    file of the same name is {"same_as": name}; a tokenizer.json whose "model" equals the fixture
    tokenizer.json's is {"json": ...} with {"same_as": "tokenizer.json"} as its model; other files are
    {"text": ...}. Inverse: `write_saved_folder`."""
    files = {}
    for path in sorted(Path(folder).iterdir()):
        shared = Path(fixture_dir) / path.name
        if shared.is_file() and shared.read_bytes() == path.read_bytes():
            files[path.name] = {"same_as": path.name}
        elif path.suffix == ".json" and shared.is_file() and _json(path) == _json(shared):
            files[path.name] = {"same_as": path.name, "content_only": True}  # same JSON, other layout
        elif path.suffix not in (".json", ".txt"):
            raise ValueError(f"{path} is not text and differs from {shared}")
        elif path.name == "tokenizer.json" and shared.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("model") == _json(shared)["model"]:
                data["model"] = {"same_as": "tokenizer.json"}
            files[path.name] = {"json": data}
        else:
            files[path.name] = {"text": path.read_text(encoding="utf-8")}
    return files


def write_saved_folder(files: Mapping[str, Any], folder: Path, fixture_dir: Path) -> Path:
    """Write a folder that `shrink_saved_folder` described, taking the shared parts from `fixture_dir`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if "same_as" in content:
            (folder / name).write_bytes((Path(fixture_dir) / content["same_as"]).read_bytes())
            continue
        if "json" in content:
            data = copy.deepcopy(content["json"])
            if data.get("model") == {"same_as": "tokenizer.json"}:
                data["model"] = _json(Path(fixture_dir) / "tokenizer.json")["model"]
            text = json.dumps(data, ensure_ascii=False)
        else:
            text = content["text"]
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def expand_refs(value: Any, pools: Mapping[str, list]) -> Any:
    """Replace {"__ref__": pool, "index": i} by pools[pool][i] and {"__ref__": pool, "slice": [a, b]} by
    pools[pool][a:b], at any depth (cases.json stores its texts once, in pools such as "lines")."""
    if isinstance(value, list):
        return [expand_refs(item, pools) for item in value]
    if isinstance(value, dict):
        if "__ref__" in value:
            pool = pools[value["__ref__"]]
            return copy.deepcopy(pool[value["index"]] if "index" in value else pool[slice(*value["slice"])])
        return {key: expand_refs(item, pools) for key, item in value.items()}
    return value


# Reference exceptions whose type says little; polyformer raises a ValueError / TypeError with a message.
VAGUE_ERRORS = {"AssertionError", "IndexError", "Exception", "PanicException"}


def expectation(step: Mapping[str, Any], kind: str) -> Any:
    """The reference's result of a recorded step for `kind` ("slow" or "fast")."""
    expected = step["expected"]
    return expected.get("both", expected.get(kind))


def same(got: Any, expected: Any) -> bool:
    """`got == expected`, where an expected exception matches one of the same type (or, for a vague
    reference type, a ValueError / TypeError), at any depth."""
    if isinstance(expected, dict) and "__error__" in expected:
        kind = expected["__error__"]
        if not (isinstance(got, dict) and "__error__" in got):
            return kind == "PanicException"  # the reference's backend crashed; tokenizers >= 0.19 does not
        return got["__error__"] == kind or (kind in VAGUE_ERRORS and got["__error__"] in ("ValueError", "TypeError"))
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in expected)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected))
    return got == expected


def check(got: Any, expected: Any, where: str) -> None:
    assert same(got, expected), f"{where}:\n  got      {str(got)[:800]}\n  expected {str(expected)[:800]}"
