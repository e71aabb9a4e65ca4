"""How a `from_pretrained` reports checkpoint weights the model has no place for (all frameworks).

transformers 4.37 warns about unused weights only when the model's class is the one config.json's
`architectures` names (a checkpoint of another head is expected to carry weights this class lacks) and logs
them at INFO otherwise. We also warn whenever an unused weight lies under a module the model has: a
`transformer.layer.1...` weight loaded into a 1-layer model means config.json and the checkpoint disagree,
whatever the class.
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional, Sequence


def log_unused_weights(logger: logging.Logger, class_name: str, unexpected: Sequence[str],
                       architectures: Optional[Iterable[str]], model_roots: Iterable[str], sep: str = ".") -> None:
    """Log `unexpected` (checkpoint weight names the model did not take) at WARNING or INFO (see above).

    Args:
        class_name: the model's class name, compared with config.json's `architectures`.
        model_roots: the first component of the model's own weight names (e.g. "distilbert", "classifier").
        sep: the separator of the weight names ("." for PyTorch names, "/" for TF / Flax paths).
    """
    if not unexpected:
        return
    roots = set(model_roots)
    own_class = class_name in (architectures or ())
    inside = [name for name in unexpected if name.split(sep, 1)[0] in roots]
    level = logging.WARNING if own_class or inside else logging.INFO
    logger.log(level, "Some weights of the checkpoint were not used when initializing %s: %s%s", class_name,
               list(unexpected), " (they lie inside the model's own modules: does config.json match the checkpoint, "
               "e.g. its number of layers?)" if inside else "")
