"""CodeGen's configuration (framework-free): GPT-J's, plus `n_ctx`."""

from __future__ import annotations

from ...value_rules import POSITIVE_INT
from ..gptj.configuration import GPTJConfig


class CodeGenConfig(GPTJConfig):
    """Configuration of a CodeGen model; the defaults are GPT-J's (n_embd 4096, 28 layers, 16 heads,
    rotary_dim 64, vocab 50400, n_positions 2048, gelu_new), see `GPTJConfig` for every argument.

    Args:
        n_ctx: kept for compatibility (2048); it has no effect on the model.

    Example:
        >>> from polyformer import CodeGenConfig, CodeGenForCausalLM
        >>> model = CodeGenForCausalLM(CodeGenConfig(n_layer=2, n_embd=64, n_head=4, rotary_dim=8))
    """

    model_type = "codegen"
    value_rules = {**GPTJConfig.value_rules, "n_ctx": POSITIVE_INT}

    def __init__(self, vocab_size: int = 50400, n_positions: int = 2048, n_ctx: int = 2048, **kwargs):
        self.n_ctx = n_ctx
        super().__init__(vocab_size=vocab_size, n_positions=n_positions, **kwargs)
