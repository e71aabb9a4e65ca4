"""text-generation pipeline against transformers 4.37.2's (tests/fixtures/pipelines/text_generation/,
scripts/fixtures/make_pipeline_generation_fixtures.py): CodeGen, Llama and Code Llama tiny checkpoints,
every option, single and batched prompts, the TextStreamer, and the Code Llama <FILL_ME> call of the
docs (`return_type=1`)."""

from __future__ import annotations

import pytest
import torch

from helpers.pipeline_cases import PIPELINE_FIXTURES, assert_matches, load_cases, setup_tokenizer
from polyformer import ReturnType, TextGenerationPipeline, TextStreamer, pipeline

FOLDER = PIPELINE_FIXTURES / "text_generation"
CASES = load_cases("text_generation")
BY_ID = {case["id"]: case for case in CASES}


def run_case(case, capsys=None):
    kwargs = dict(case.get("kwargs", {}))
    if case.get("return_type_enum"):
        kwargs["return_type"] = ReturnType(kwargs["return_type"])
    pipe = pipeline("text-generation", model=str(FOLDER / case["model"]), **case.get("init", {}))
    setup_tokenizer(pipe, case.get("setup", {}))
    if case.get("streamer"):
        kwargs["streamer"] = TextStreamer(pipe.tokenizer, **case["streamer"])
    if case.get("seed") is not None:
        torch.manual_seed(case["seed"])
    return pipe(case["inputs"], **kwargs)


def _int_return_type(case) -> bool:  # 4.37.2 fails on a plain int; polyformer reads it as the enum
    return case.get("raises", {}).get("type") == "UnboundLocalError"


RIGHT_PADDED = "codegen.list_batched_tokenizer_side"  # 4.37 pads CodeGen prompts on the right; polyformer left


def _differs(case) -> bool:
    return _int_return_type(case) or case["id"] == RIGHT_PADDED


@pytest.mark.parametrize("case", [c for c in CASES if not _differs(c)], ids=lambda c: c["id"])
def test_matches_reference(case, capsys):
    if "raises" in case:
        with pytest.raises(Exception) as info:
            run_case(case)
        assert type(info.value).__name__ == case["raises"]["type"]
        if "pad_token" not in case["raises"]["message"]:  # polyformer words the no-pad-token error itself
            assert str(info.value) == case["raises"]["message"]
        else:
            assert "pad_token" in str(info.value)
        return
    capsys.readouterr()
    got = run_case(case)
    assert_matches(got, case["expected"])
    if "streamed" in case:
        assert capsys.readouterr().out == case["streamed"]


@pytest.mark.parametrize("case", [c for c in CASES if _int_return_type(c)], ids=lambda c: c["id"])
def test_int_return_type_is_the_enum(case):
    """`return_type=1` (the Code Llama docs' call) works as ReturnType.NEW_TEXT: same result as the enum."""
    enum_case = BY_ID[case["id"].replace("return_type_int_", "return_type_enum_").replace("infill_seed_int",
                                                                                          "infill_seed")]
    assert_matches(run_case(case), enum_case["expected"])


def test_batched_equals_one_by_one():
    for kind in ("codegen", "llama", "code_llama"):
        assert BY_ID[f"{kind}.list_batched"]["expected"] == BY_ID[f"{kind}.list_unbatched"]["expected"]
        assert BY_ID[f"{kind}.list_batched_tokenizer_side"]["kwargs"]["batch_size"] == 3


def test_prompts_are_padded_left_whatever_the_tokenizer_side():
    """CodeGen's tokenizer pads on the right; 4.37 then batches right-padded prompts and its results differ
    from the one-by-one ones. polyformer pads prompts on the left and returns the one-by-one results."""
    case = BY_ID[RIGHT_PADDED]
    unbatched = BY_ID["codegen.list_unbatched"]["expected"]
    assert case["expected"] != unbatched  # what the reference does
    pipe = pipeline("text-generation", model=str(FOLDER / "codegen"))
    setup_tokenizer(pipe, case["setup"])
    assert pipe.tokenizer.padding_side == "right"
    assert_matches(pipe(case["inputs"], **case["kwargs"]), unbatched)


def test_code_llama_infill_new_text():
    case = BY_ID["code_llama.infill_seed"]
    out = run_case(case)
    assert isinstance(out, list) and set(out[0]) == {"generated_text"}
    assert "<FILL_ME>" not in out[0]["generated_text"]


def test_pipeline_class_and_return_type_values():
    pipe = pipeline("text-generation", model=str(FOLDER / "llama"))
    assert isinstance(pipe, TextGenerationPipeline)
    assert [ReturnType.TENSORS, ReturnType.NEW_TEXT, ReturnType.FULL_TEXT] == [0, 1, 2]
    with pytest.raises(ValueError, match="return_type"):
        pipe("x", max_new_tokens=1, return_type=7)


def test_generator_input_streams_results():
    pipe = pipeline("text-generation", model=str(FOLDER / "llama"), max_new_tokens=2)
    results = pipe(p for p in ["a", "b"])
    assert not isinstance(results, list)
    assert [r[0]["generated_text"][:1] for r in results] == ["a", "b"]


def test_chat_messages_are_a_clear_error():
    pipe = pipeline("text-generation", model=str(FOLDER / "llama"))
    with pytest.raises(ValueError, match="chat messages"):
        pipe([{"role": "user", "content": "hi"}], max_new_tokens=1)
