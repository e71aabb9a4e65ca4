"""Knowledge distillation as the DistilBERT paper did it, runnable: `polyformer distill` and

    from polyformer.distillation import distill
    distill(teacher="bert-base-uncased-folder", output_dir="student", data=["corpus.txt"], max_steps=10_000)

The student starts from one teacher layer out of two (`polyformer convert bert-to-distilbert`'s mapping)
and learns from a triple loss: soft targets at temperature T (`losses.distillation_loss`, × T²), masked-LM
cross-entropy (`losses.mlm_loss`) and the cosine between student and teacher last hidden states
(`losses.cosine_loss`), optionally an MSE on them (`losses.hidden_mse_loss`). Dynamic masking
(`masking.mask_tokens`), streamed text (`data`), gradient accumulation, AdamW with linear warmup, bf16
autocast, atomic checkpoints and exact resume (`trainer`), one or many processes (`polyformer.training`).
Importing this package imports nothing heavy; its names import torch when first used (accelerate only
when several processes run).
"""

import importlib

_NAMES = {  # public name -> submodule; loaded on first use, so `polyformer --help` does not import torch
    "cosine_loss": "losses", "distillation_loss": "losses", "hidden_mse_loss": "losses", "mlm_loss": "losses",
    "mask_tokens": "masking", "DistillationError": "models", "every_other_layer": "models",
    "DistillationArguments": "trainer", "Distiller": "trainer", "distill": "trainer",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
