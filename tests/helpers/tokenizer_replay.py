"""Replay a family's recorded tokenizer cases (tests/fixtures/tokenizers/<family>/cases.json, written by
scripts/fixtures/make_decoder_tokenizer_fixtures.py with transformers 4.37.2) on polyformer's classes.

A test module makes one `Replay(family, classes, deviations)` and takes its fixtures and tests:

    (folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
     test_save_like_reference) = REPLAY.tests()

`deviations` maps (case id, step index, kind) to (why, what applies instead: "slow" / "fast" for the
other kind's result, or a value); COMMON_DEVIATIONS, in the cases all families record, are added.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Tuple

import pytest

from polyformer.tokenization.encoding import AddedToken
from .tokenizer_fixture_io import (build_tokenizer, cached_maker, check, expand_refs, expectation, run_step,
                                   write_saved_folder)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizers"
Deviations = Mapping[Tuple[str, int, str], Tuple[str, Any]]

# Deviations in the cases every family records (the script's record_common).
COMMON_DEVIATIONS = {
    ("special", 3, "fast"): ("get_special_tokens_mask without already_has_special_tokens is an AssertionError on the "
                             "reference's fast tokenizers; polyformer answers like the slow one", "slow"),
    ("special", 8, "fast"): ("same as above, inside prepare_for_model(return_special_tokens_mask=True)", "slow"),
}


class Replay:
    def __init__(self, family: str, classes: Mapping[str, type], deviations: Deviations = None,
                 saved_deviations: Mapping[Tuple[str, str], Tuple[str, Callable[[Any], Any]]] = None,
                 section: str = None):
        """`section`: replay the document's `section` (its own "tokenizers", "saved" and "cases", e.g. GPT-2's
        "auto": AutoTokenizer on model folders) with the document's text pools; then only `params`,
        `maker`, `run_case` and `write_folders` apply."""
        self.dir = FIXTURES / family
        self.doc = json.loads((self.dir / "cases.json").read_text(encoding="utf-8"))
        self.pools = {name: self.doc[name] for name in ("lines", "hard", "snippets", "completions") if name in self.doc}
        if section is not None:
            self.doc = self.doc[section]
        self.classes = dict(classes)
        self.deviations = {**COMMON_DEVIATIONS, **(deviations or {})}
        self.saved_deviations = dict(saved_deviations or {})  # (folder, file) -> (why, reference content -> ours)
        self.cases = {case["id"]: case for case in self.doc["cases"]}

    def params(self):
        return [pytest.param(case, kind, id=f"{case['id']}-{kind}") for case in self.doc["cases"]
                for kind in case["kinds"]]

    def write_folders(self, root: Path) -> Dict[str, Path]:
        """The reference's saved folders, written under `root`."""
        return {name: write_saved_folder(files, root / name, self.dir) for name, files in self.doc["saved"].items()}

    def maker(self, folders: Mapping[str, Path]) -> Callable[..., Any]:
        """`make(spec_name, kind, fresh=False)`: a tokenizer as the spec says (shared unless fresh)."""
        return cached_maker(lambda name, kind: build_tokenizer(self.doc["tokenizers"][name], self.classes[kind],
                                                               self.dir, folders, AddedToken))

    def expected(self, case: dict, index: int, kind: str) -> Any:
        step = case["steps"][index]
        if (case["id"], index, kind) not in self.deviations:
            return expectation(step, kind)
        instead = self.deviations[case["id"], index, kind][1]
        return expectation(step, instead) if instead in ("slow", "fast") else instead

    def run_case(self, case: dict, kind: str, make: Callable[..., Any]) -> None:
        tok = make(case["tokenizer"], kind, fresh=case["fresh"])
        for i, step in enumerate(case["steps"]):
            call = {key: value for key, value in step.items() if key != "expected"}
            got = run_step(tok, expand_refs(call, self.pools), AddedToken)
            check(got, self.expected(case, i, kind), f"{case['id']} step {i} ({kind}) {str(call)[:300]}")

    def check_deviations(self) -> None:
        """Each listed deviation names a step whose reference result really is what we do not do."""
        for (case_id, index, kind), (why, _) in self.deviations.items():
            step = self.cases[case_id]["steps"][index]
            assert kind in self.cases[case_id]["kinds"], (case_id, index, kind)
            assert expectation(step, kind) != self.expected(self.cases[case_id], index, kind), why

    def check_constructions(self, folders: Mapping[str, Path]) -> None:
        """Each spec builds (or fails with the error type) as it did on the reference."""
        for name, results in self.doc["constructions"].items():
            spec = self.doc["tokenizers"][name]
            for kind, error in results.items():
                try:
                    build_tokenizer(spec, self.classes[kind], self.dir, folders, AddedToken)
                    got = None
                except Exception as err:  # noqa: BLE001 (compared with the reference's)
                    got = {"__error__": type(err).__name__, "message": str(err)}
                check(got, error, f"building {name!r} ({kind})")

    def saved_like_reference(self, name: str, make: Callable[..., Any], folder: Path) -> None:
        """Redo what the script did before saving folder `name` (saved_<kind>, added_<kind>, json_only),
        save into `folder`, and compare file by file with what the reference wrote."""
        kind = name.rsplit("_", 1)[-1] if not name.startswith("json") else "fast"
        tok = make("file" if name == "json_only" else "default", kind, fresh=True)
        if name.startswith("added"):
            tok.add_tokens(["newword", "NewTok"])
            tok.add_tokens(AddedToken("xyz", single_word=True, lstrip=True, rstrip=True))
            tok.add_special_tokens({"additional_special_tokens": ["<extra>"]})
        tok.save_pretrained(folder)
        reference = self.write_folders_one(name, folder.parent / f"{folder.name}.reference")
        assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in reference.iterdir())
        for path in sorted(reference.iterdir()):
            ours = folder / path.name
            got, expected = file_content(ours), file_content(path)
            if (name, path.name) in self.saved_deviations:
                expected = self.saved_deviations[name, path.name][1](expected)
            assert got == expected, f"{name}/{path.name}:\n  got      {got!s:.1500}\n  expected {expected!s:.1500}"

    def write_folders_one(self, name: str, folder: Path) -> Path:
        return write_saved_folder(self.doc["saved"][name], folder, self.dir)

    def fixtures(self, folders_name: str = "folders", make_name: str = "make"):
        """Two module-scoped fixtures: the saved folders (`write_folders`) and `make` (`maker` on them),
        named `folders_name` and `make_name`."""
        replay = self

        @pytest.fixture(scope="module", name=folders_name)
        def folders(tmp_path_factory):
            return replay.write_folders(tmp_path_factory.mktemp(folders_name))

        @pytest.fixture(scope="module", name=make_name)
        def make(request):
            return replay.maker(request.getfixturevalue(folders_name))

        return folders, make

    def tests(self):
        """The module-scoped fixtures `folders` (saved folders) and `make` (see `maker`), and the tests:
        every case on every kind, the deviations, the constructions, the saved files."""
        replay = self
        folders, make = self.fixtures()

        @pytest.mark.parametrize("case,kind", self.params())
        def test_matches_reference(case, kind, make):
            replay.run_case(case, kind, make)

        def test_deviations_still_differ():
            replay.check_deviations()

        def test_constructions(folders):
            replay.check_constructions(folders)

        @pytest.mark.parametrize("name", sorted(self.doc["saved"]))
        def test_save_like_reference(name, make, tmp_path):
            replay.saved_like_reference(name, make, tmp_path / name)

        return (folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
                test_save_like_reference)


def file_content(path: Path) -> Any:
    """A tokenizer file's content, with the layout tokenizers versions differ in normalized away."""
    if path.suffix == ".model":
        return path.read_bytes()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".txt":
        return [line for line in text.split("\n") if line and not line.startswith("#version")]
    data = json.loads(text)
    if path.name == "tokenizer.json":
        model = data.get("model", {})
        if isinstance(model.get("merges"), list):  # tokenizers >= 0.20 writes [left, right]
            model["merges"] = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        if model.get("ignore_merges") is False:  # a BPE option tokenizers >= 0.20 writes
            del model["ignore_merges"]
    return data
