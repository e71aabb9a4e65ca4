"""What `generate(..., return_dict_in_generate=True)` returns: transformers 4.37's classes, fields in its
order, with its older names as aliases (`GreedySearchDecoderOnlyOutput`, `SampleDecoderOnlyOutput`,
`BeamSearchDecoderOnlyOutput`, ...).

Shapes: `sequences` (B * num_return_sequences, L); `scores`: one (B*, V) tensor per generated token —
processed scores (greedy / sampling), or log-probabilities plus processing (beams, one row per beam);
`sequences_scores` (B * num_return_sequences,); `beam_indices` (B * num_return_sequences, L), -1 past the
end; `attentions` / `hidden_states`: per generated token, the model's per-layer tuple.
"""

from __future__ import annotations

from dataclasses import make_dataclass
from typing import Any, List

from ..outputs import ModelOutput

_ENCODER_DECODER = ["encoder_attentions", "encoder_hidden_states", "decoder_attentions", "cross_attentions",
                    "decoder_hidden_states", "past_key_values"]


def _output(name: str, fields: List[str], doc: str) -> type:
    """A ModelOutput dataclass with these fields (all default None), in this order."""
    return make_dataclass(name, [(field, Any, None) for field in fields], bases=(ModelOutput,),
                          namespace={"__doc__": doc, "__module__": __name__})


GenerateDecoderOnlyOutput = _output(
    "GenerateDecoderOnlyOutput", ["sequences", "scores", "attentions", "hidden_states", "past_key_values"],
    "Greedy / sampling output of a decoder-only model.")
GenerateEncoderDecoderOutput = _output(
    "GenerateEncoderDecoderOutput", ["sequences", "scores", *_ENCODER_DECODER],
    "Greedy / sampling output of an encoder-decoder model.")
GenerateBeamDecoderOnlyOutput = _output(
    "GenerateBeamDecoderOnlyOutput",
    ["sequences", "sequences_scores", "scores", "beam_indices", "attentions", "hidden_states", "past_key_values"],
    "Beam search / beam sampling output of a decoder-only model.")
GenerateBeamEncoderDecoderOutput = _output(
    "GenerateBeamEncoderDecoderOutput", ["sequences", "sequences_scores", "scores", "beam_indices", *_ENCODER_DECODER],
    "Beam search / beam sampling output of an encoder-decoder model.")

# transformers 4.37's older names for the same classes
GreedySearchDecoderOnlyOutput = SampleDecoderOnlyOutput = ContrastiveSearchDecoderOnlyOutput = GenerateDecoderOnlyOutput
GreedySearchEncoderDecoderOutput = SampleEncoderDecoderOutput = ContrastiveSearchEncoderDecoderOutput = (
    GenerateEncoderDecoderOutput)
BeamSearchDecoderOnlyOutput = BeamSampleDecoderOnlyOutput = GenerateBeamDecoderOnlyOutput
BeamSearchEncoderDecoderOutput = BeamSampleEncoderDecoderOutput = GenerateBeamEncoderDecoderOutput
