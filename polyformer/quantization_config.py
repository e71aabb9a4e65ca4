"""`TorchAoConfig`: which quantization `from_pretrained` / `quantize_` apply, in transformers' spelling
(`TorchAoConfig("int8_weight_only")`, `TorchAoConfig("int4_weight_only", group_size=128)`,
`TorchAoConfig("int8_dynamic_activation_int8_weight")`).
This module imports no framework; the quantized layers are in pt/quantize.py.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

QUANT_TYPES = {"int8_weight_only": {}, "int4_weight_only": {"group_size": 128},
               "int8_dynamic_activation_int8_weight": {}}
INT4_GROUP_SIZES = (32, 64, 128, 256)


class TorchAoConfig:
    """Quantization of a model's linear layers (the output embeddings excepted, as in transformers).

    quant_type: "int8_weight_only" (per output channel, symmetric), "int4_weight_only" (asymmetric, in
        groups of `group_size` input channels: 32, 64, 128 or 256; default 128), or
        "int8_dynamic_activation_int8_weight" (int8 weights as int8_weight_only, and each input row
        quantized to int8 at every call: integer matrix products, CTranslate2's int8; the fastest on CPU,
        the least exact).
    modules_to_not_convert: names of modules (or prefixes, e.g. "lm_head") to leave in floating point;
        None: the output embeddings.

    Example:
        >>> from polyformer import AutoModelForCausalLM, TorchAoConfig
        >>> model = AutoModelForCausalLM.from_pretrained(
        ...     "Salesforce/codegen-350M-mono", torch_dtype="bfloat16",
        ...     quantization_config=TorchAoConfig("int8_weight_only"))  # doctest: +SKIP
    """

    quant_method = "torchao"

    def __init__(self, quant_type: str, modules_to_not_convert: Optional[List[str]] = None, **kwargs: Any):
        if quant_type not in QUANT_TYPES:
            raise ValueError(f"quant_type must be one of {sorted(QUANT_TYPES)}, got {quant_type!r}")
        kwargs = {**kwargs.pop("quant_type_kwargs", {}), **kwargs}
        unknown = set(kwargs) - set(QUANT_TYPES[quant_type])
        if unknown:
            raise TypeError(f"TorchAoConfig({quant_type!r}) takes no {sorted(unknown)}; it takes "
                            f"{sorted(QUANT_TYPES[quant_type]) or 'no keyword arguments'}")
        self.quant_type = quant_type
        self.quant_type_kwargs = {**QUANT_TYPES[quant_type], **kwargs}
        group = self.quant_type_kwargs.get("group_size")
        if group is not None and group not in INT4_GROUP_SIZES:
            raise ValueError(f"group_size must be one of {INT4_GROUP_SIZES}, got {group!r}")
        if modules_to_not_convert is not None and not isinstance(modules_to_not_convert, (list, tuple)):
            raise TypeError(f"modules_to_not_convert must be a list of module names, got {modules_to_not_convert!r}")
        self.modules_to_not_convert = None if modules_to_not_convert is None else list(modules_to_not_convert)

    @property
    def group_size(self) -> Optional[int]:
        return self.quant_type_kwargs.get("group_size")

    def to_dict(self) -> Dict[str, Any]:
        return {"quant_method": self.quant_method, "quant_type": self.quant_type,
                "quant_type_kwargs": dict(self.quant_type_kwargs), "modules_to_not_convert": self.modules_to_not_convert}

    @classmethod
    def from_dict(cls, config: Dict[str, Any]) -> "TorchAoConfig":
        config = dict(config)
        method = config.pop("quant_method", cls.quant_method)
        if method != cls.quant_method:
            raise ValueError(f"quant_method {method!r} is not supported; polyformer quantizes with 'torchao' configs")
        return cls(config.pop("quant_type"), config.pop("modules_to_not_convert", None),
                   **config.pop("quant_type_kwargs", {}))

    def __repr__(self) -> str:
        return f"TorchAoConfig({self.to_dict()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TorchAoConfig) and self.to_dict() == other.to_dict()
