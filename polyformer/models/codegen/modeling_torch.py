"""CodeGen in PyTorch (Nijkamp et al., 2022): GPT-J's decoder with q, v, k fused into one projection
laid out for 4 TPU cores.

Notation: B batch, T new tokens, C width (n_embd), H heads, D head dim, M = 4 model-parallel shards.
The block, stack and LM head are GPT-J's (polyformer/pt/decoder.py); CodeGen's own part is how its
fused `qkv_proj` splits. Module attributes are the reference's checkpoint keys
(transformer.h.0.attn.qkv_proj, lm_head).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...generation.utils import GenerationMixin
from ...pt.decoder import ParallelAttention, ParallelDecoder, ParallelDecoderForCausalLM
from ...pt.modeling import PreTrainedModel
from .configuration import CodeGenConfig


MP_NUM = 4  # the TPU-v4 shards the original checkpoints were trained on


class CodeGenAttention(ParallelAttention):
    """qkv_proj (C -> 3C, no bias): the output splits into M shards, each holding [q | v | k] for its
    H/M heads; out_proj as GPT-J's."""

    def __init__(self, config: CodeGenConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        if config.n_head % MP_NUM:
            raise ValueError(f"CodeGen needs n_head divisible by {MP_NUM}, got n_head={config.n_head}")
        self.qkv_proj = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)

    def project(self, x: torch.Tensor):
        b, t, _ = x.shape
        qkv = self.qkv_proj(x).view(b, t, MP_NUM, 3, self.n_head // MP_NUM, self.head_dim)
        q, v, k = (qkv[:, :, :, i].reshape(b, t, self.n_head, self.head_dim).transpose(1, 2) for i in range(3))
        return q, k, v  # (B, H, T, D)


class CodeGenPreTrainedModel(PreTrainedModel):
    config_class = CodeGenConfig
    base_model_prefix = "transformer"
    _no_split_modules = ["ParallelBlock"]  # device_map: each block whole on one device (4.37: CodeGenBlock)
    _skip_keys_device_placement = "past_key_values"


class CodeGenModel(CodeGenPreTrainedModel, ParallelDecoder):
    """The bare decoder: last_hidden_state (B, T, C), past_key_values, hidden states, attentions.

    Example:
        >>> from polyformer import AutoTokenizer, CodeGenModel
        >>> tokenizer = AutoTokenizer.from_pretrained("Salesforce/codegen-350M-mono")
        >>> model = CodeGenModel.from_pretrained("Salesforce/codegen-350M-mono")
        >>> model(**tokenizer("def hello():", return_tensors="pt")).last_hidden_state.shape
        torch.Size([1, 4, 1024])
    """

    attention_class = CodeGenAttention
    mask_options = {"stack": True}  # padding adds dtype-min on top of the causal mask


class CodeGenForCausalLM(GenerationMixin, CodeGenPreTrainedModel, ParallelDecoderForCausalLM):
    """CodeGen with its LM head (lm_head, with bias). labels (B, T) are shifted inside; -100 is ignored.

    Example:
        >>> from polyformer import AutoTokenizer, CodeGenForCausalLM
        >>> tokenizer = AutoTokenizer.from_pretrained("Salesforce/codegen-350M-mono")
        >>> model = CodeGenForCausalLM.from_pretrained("Salesforce/codegen-350M-mono")
        >>> ids = model.generate(**tokenizer("def hello_world():", return_tensors="pt"))
    """

    model_class = CodeGenModel
