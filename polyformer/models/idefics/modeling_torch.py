"""IDEFICS in PyTorch (Laurençon et al., 2023): Llama's decoder reading images through gated
cross-attention layers, as transformers 4.37 implements it.

Notation: B batch, T new tokens, S = past + T keys, C width, H heads, D head dim, N images per row,
L tokens per image (1 + patches, or the perceiver's latents), E the vision width, V vocabulary.

    images (B, N, channels, h, w) -> vision_model -> [perceiver_resampler] -> image states (B, N, L, E)
    tokens -> embed_tokens -> for each decoder layer i:
                 if i % cross_layer_interval == 0:  gated cross-attention layer i // interval
                 Llama decoder layer i
              -> norm -> [lm_head]

The stack (cache, masks, rotary tables) is `pt.decoder.DecoderModel` with Llama's module names (`LlamaStack`); its
decoder layers are Llama's, and its blocks (`image_text_blocks`) slot the gated cross-attention layers
(layers.py) between them.
Module attributes are the reference's checkpoint keys (model.layers.0.self_attn.q_proj,
model.gated_cross_attn_layers.0.alpha_dense, ...).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import torch
import torch.nn as nn

from ...generation.utils import GenerationMixin
from ...outputs import ModelOutput, finish
from ...pt import inputs
from ...pt.cache import StaticCache
from ...pt.decoder import DecoderStep
from ...pt.heads import causal_lm_loss, cross_entropy_loss
from ...pt.modeling import PreTrainedModel
from ...pt.rotary import Rotary
from ..llama.modeling_torch import CausalLMAccessors, LlamaRMSNorm, LlamaStack
from .configuration import IdeficsConfig
from .images import IMAGE_INPUTS, check_image_embeddings, check_pixel_values, image_context, image_rows
from .layers import (IdeficsDecoderLayer, IdeficsDecoupledEmbedding, IdeficsDecoupledLinear,
                     IdeficsGatedCrossAttentionLayer, freeze_model, text_config)
from .perceiver import IdeficsPerceiverResampler
from .vision import IdeficsVisionEmbeddings, IdeficsVisionTransformer

logger = logging.getLogger(__name__)


@dataclass
class IdeficsBaseModelOutputWithPast(ModelOutput):
    """`last_hidden_state` (B, T, C) after the final norm; `past_key_values` per layer (k, v) (B, H, S, D);
    `hidden_states`: the embeddings and each layer's output; `attentions`: one None per layer (4.37
    computes IDEFICS's attention with SDPA, which gives no weights); `image_hidden_states` (B, N, L, E):
    the vision encoder's output, or the perceiver's with the resampler."""

    last_hidden_state: Any = None
    past_key_values: Optional[Tuple] = None
    hidden_states: Optional[Tuple] = None
    attentions: Optional[Tuple] = None
    image_hidden_states: Any = None


@dataclass
class IdeficsCausalLMOutputWithPast(ModelOutput):
    """`loss` (next-token cross-entropy), `logits` (B, T, V + additional_vocab_size), then as
    `IdeficsBaseModelOutputWithPast`."""

    loss: Any = None
    logits: Any = None
    past_key_values: Optional[Tuple] = None
    hidden_states: Optional[Tuple] = None
    attentions: Optional[Tuple] = None
    image_hidden_states: Any = None


class IdeficsPreTrainedModel(PreTrainedModel):
    config_class = IdeficsConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    # device_map: blocks whole on one device; the vision tower and the perceiver too (their forwards read
    # their own parameters directly)
    _no_split_modules = ["IdeficsDecoderLayer", "IdeficsGatedCrossAttentionLayer", "IdeficsVisionTransformer",
                         "IdeficsPerceiverResampler"]
    _skip_keys_device_placement = "past_key_values"
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The reference's simplified init (normal Linear / Embedding weights), plus the parameters it
        draws at construction (CLS embedding, latents, gates) for weights a checkpoint lacks."""
        if isinstance(module, LlamaRMSNorm):
            module.weight.fill_(1.0)
        elif isinstance(module, nn.Conv2d):
            module.reset_parameters()
        elif isinstance(module, IdeficsGatedCrossAttentionLayer):
            module.reset_alphas()
        elif isinstance(module, IdeficsVisionEmbeddings):
            module.class_embedding.normal_()
        elif isinstance(module, IdeficsPerceiverResampler):
            module.latents.normal_()
        else:
            super()._init_weights(module)


# --------------------------------------------------------------------------------------------------
# Models


class IdeficsModel(IdeficsPreTrainedModel, LlamaStack):
    """The bare IDEFICS decoder: images and tokens in, last_hidden_state (B, T, C) out (plus past_key_values,
    hidden states, attentions and image_hidden_states).

    Example:
        >>> import torch
        >>> from polyformer import IdeficsConfig, IdeficsModel
        >>> config = IdeficsConfig(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        ...                        num_attention_heads=4, vision_config=dict(embed_dim=16, image_size=20,
        ...                        patch_size=10, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24))
        >>> model = IdeficsModel(config).eval()
        >>> out = model(torch.tensor([[1, 5, 6]]), pixel_values=torch.rand(1, 1, 3, 20, 20),
        ...             image_attention_mask=torch.ones(1, 3, 1, dtype=torch.long))
        >>> out.last_hidden_state.shape, out.image_hidden_states.shape
        (torch.Size([1, 3, 32]), torch.Size([1, 1, 5, 16]))
    """

    def __init__(self, config: IdeficsConfig):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = IdeficsDecoupledEmbedding(config.vocab_size, config.additional_vocab_size,
                                                      config.hidden_size, partially_freeze=config.freeze_text_layers,
                                                      padding_idx=self.padding_idx)
        self.image_size = config.vision_config.image_size
        self.vision_config = config.vision_config
        config.vision_config._attn_implementation = config._attn_implementation
        self.vision_model = IdeficsVisionTransformer(config.vision_config)
        if config.use_resampler:
            p = config.perceiver_config
            self.perceiver_resampler = IdeficsPerceiverResampler(
                config, embed_dim=config.vision_config.embed_dim, depth=p.resampler_depth, n_heads=p.resampler_n_heads,
                head_dim=p.resampler_head_dim, n_latents=p.resampler_n_latents)
        text = text_config(config)
        self.layers = nn.ModuleList(IdeficsDecoderLayer(text, i, config.dropout) for i in range(config.num_hidden_layers))
        self.cross_layer_interval = interval = config.cross_layer_interval
        if not isinstance(interval, int) or interval < 1 or config.num_hidden_layers % interval:
            raise ValueError(f"cross_layer_interval={interval} must be a positive divisor of "
                             f"num_hidden_layers={config.num_hidden_layers}")
        self.gated_cross_attn_layers = nn.ModuleList(
            IdeficsGatedCrossAttentionLayer(config, i) for i in range(config.num_hidden_layers // interval))
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary = Rotary(config.hidden_size // config.num_attention_heads, base=10000.0, layout="half")
        self.post_init()
        self.freeze_relevant_params(config)

    # --- freezing -----------------------------------------------------------------------------------
    def freeze_relevant_params(self, config: Optional[IdeficsConfig] = None) -> None:
        """Apply the config's freeze_text_layers / freeze_vision_layers (with their exceptions)."""
        config = self.config if config is None else config
        if config.freeze_text_layers:
            self.freeze_text_layers(config.freeze_text_module_exceptions)
        if config.freeze_vision_layers:
            self.freeze_vision_layers(config.freeze_vision_module_exceptions)

    def freeze_text_layers(self, module_exceptions=()) -> None:
        """Freeze the decoder layers and the final norm (not the cross-attention layers, not the embeddings)."""
        for module in (self.layers, self.norm):
            freeze_model(module, module_exceptions=module_exceptions)

    def freeze_vision_layers(self, module_exceptions=()) -> None:
        freeze_model(self.vision_model, module_exceptions=module_exceptions)

    # --- DecoderModel (final norm, embed, input embeddings: LlamaStack's) ------------------------------
    blocks_name = "image_text_blocks"
    unmask_unattended = "always"  # 4.37 always builds IDEFICS's mask for SDPA: left padding attends to every key

    @property
    def image_text_blocks(self) -> List[functools.partial]:
        """The blocks `decode` runs: gated cross-attention layer i // interval, then decoder layer i, as one
        block (one checkpointed unit); each block's attention weights are None, as the reference's SDPA
        attention gives."""
        return [functools.partial(self._cross_then_decode, i) for i in range(len(self.layers))]

    def _cross_then_decode(self, i: int, x, step: DecoderStep, head_mask=None, output_attentions=False):
        if i % self.cross_layer_interval == 0:
            x = self.gated_cross_attn_layers[i // self.cross_layer_interval](x, step)
        return self.layers[i](x, step)[0], None

    # --- images -------------------------------------------------------------------------------------
    def image_states(self, pixel_values=None, image_encoder_embeddings=None, perceiver_embeddings=None,
                     interpolate_pos_encoding: bool = False) -> torch.Tensor:
        """What the cross-attention reads, (B, N, L, E), from exactly one of: pixel_values (B, N, channels,
        h, w) through the vision encoder (and the perceiver with use_resampler); image_encoder_embeddings
        (B, N, L, E), the vision encoder's output (through the perceiver with use_resampler);
        perceiver_embeddings (B, N, R, E), the perceiver's output (use_resampler only)."""
        given = [name for name, x in zip(IMAGE_INPUTS, (pixel_values, image_encoder_embeddings, perceiver_embeddings))
                 if x is not None]
        if len(given) != 1:
            raise ValueError("Exactly 1 of pixel_values, image_encoder_embeddings or perceiver_embeddings has to be "
                             f"not-None. (got {given or 'none'})")
        dtype, width = self.dtype, self.vision_config.embed_dim
        if perceiver_embeddings is None:
            if pixel_values is not None:
                check_pixel_values(pixel_values, self.vision_config.num_channels)
                batch, n = pixel_values.shape[:2]
                states = self.vision_model(pixel_values.to(dtype).reshape(batch * n, *pixel_values.shape[2:]),
                                           interpolate_pos_encoding=interpolate_pos_encoding)  # (B*N, L, E)
            else:
                check_image_embeddings(image_encoder_embeddings, width, "image_encoder_embeddings")
                batch, n = image_encoder_embeddings.shape[:2]
                states = image_encoder_embeddings.to(dtype).reshape(batch * n, *image_encoder_embeddings.shape[2:])
            if self.config.use_resampler:
                states = self.perceiver_resampler(states)  # (B*N, R, E)
            return states.reshape(batch, n, *states.shape[1:])
        if not self.config.use_resampler:
            raise ValueError("If `perceiver_embeddings` are passed, use_resampler should be True")
        check_image_embeddings(perceiver_embeddings, width, "perceiver_embeddings")
        return perceiver_embeddings.to(dtype)

    # --- forward ------------------------------------------------------------------------------------
    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, pixel_values=None, image_encoder_embeddings=None, perceiver_embeddings=None,
                image_attention_mask=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                interpolate_pos_encoding=False, return_dict=None):
        """input_ids (B, T) (ids up to vocab_size + additional_vocab_size) or inputs_embeds (B, T, C): the
        new tokens; attention_mask (B, past + T), 1 keep / 0 padding; position_ids (B|1, T), by default
        counted from the attention mask (cumsum - 1, 1 at padding) or past .. past + T - 1;
        past_key_values: None, the legacy tuple or a Cache.
        One of pixel_values / image_encoder_embeddings / perceiver_embeddings (see `image_states`);
        image_attention_mask (B, T, N): 1 where a token may attend to an image (None: every image);
        interpolate_pos_encoding: let images of another size than vision_config.image_size through."""
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.outputs(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                           past_key_values=past_key_values, inputs_embeds=inputs_embeds, pixel_values=pixel_values,
                           image_encoder_embeddings=image_encoder_embeddings, perceiver_embeddings=perceiver_embeddings,
                           image_attention_mask=image_attention_mask, use_cache=use_cache,
                           output_attentions=options.output_attentions,
                           output_hidden_states=options.output_hidden_states,
                           interpolate_pos_encoding=interpolate_pos_encoding)
        return finish(out, options.return_dict)

    def outputs(self, *, input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, pixel_values,
                image_encoder_embeddings, perceiver_embeddings, image_attention_mask, use_cache,
                output_attentions: bool, output_hidden_states: bool,
                interpolate_pos_encoding: bool) -> IdeficsBaseModelOutputWithPast:
        """`forward`, always returning the output object (output options resolved by the caller)."""
        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("You cannot specify both decoder_input_ids and decoder_inputs_embeds at the same time")
        if input_ids is None and inputs_embeds is None:
            raise ValueError("You have to specify either decoder_input_ids or decoder_inputs_embeds")
        if input_ids is not None:
            inputs.check_ids(input_ids, self.config.vocab_size + self.config.additional_vocab_size)
            inputs_embeds = self.embed_tokens(input_ids)
        batch, length = inputs_embeds.shape[:2]
        images = self.image_states(pixel_values=pixel_values, image_encoder_embeddings=image_encoder_embeddings,
                                   perceiver_embeddings=perceiver_embeddings,
                                   interpolate_pos_encoding=interpolate_pos_encoding)
        if images.shape[0] != batch:
            raise ValueError(f"the images are given for {images.shape[0]} rows, the text has {batch} (batch_size)")
        context = image_context(images, image_attention_mask, batch=batch, length=length, dtype=inputs_embeds.dtype)
        if (position_ids is None and isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 2
                and attention_mask.shape[1] >= length):
            position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)[:, -length:]
        if output_attentions:
            logger.warning("attn_weights are not extracted in scaled_dot_product_attention. The model returns None "
                           "instead")
        out = self.decode(past_key_values=past_key_values, attention_mask=attention_mask, position_ids=position_ids,
                          inputs_embeds=inputs_embeds, use_cache=use_cache, output_attentions=output_attentions,
                          output_hidden_states=output_hidden_states, context={"images": context})
        return IdeficsBaseModelOutputWithPast(out.last_hidden_state, out.past_key_values, out.hidden_states,
                                              out.attentions, images)


class IdeficsGenerationCache(StaticCache):
    """generate()'s cache: the self-attention buffers of `StaticCache` (growing in blocks), plus per gated
    cross-attention layer the image keys and values (B, H, N*L, D), computed by the prompt's forward and
    reused by the later tokens (a call's images do not change; the one-token step reads `cross` through
    its `CacheWriter`). The beams of a row share their images, so `reorder` leaves those; `to_legacy`
    gives the reference's (k, v) per layer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cross: dict = {}

    def cross_kv(self, index: int, compute) -> Tuple[torch.Tensor, torch.Tensor]:
        if index not in self.cross:
            self.cross[index] = tuple(compute())
        return self.cross[index]

    def reset(self) -> None:
        super().reset()
        self.cross = {}


class IdeficsForVisionText2Text(CausalLMAccessors, GenerationMixin, IdeficsPreTrainedModel):
    """IDEFICS with its LM head (lm_head: vocab_size outputs, then additional_vocab_size more from
    lm_head.additional_fc). The loss is next-token cross-entropy over positions whose next token is not
    padding (attention_mask), -100 labels ignored. generate() encodes the images once per call.

    Example:
        >>> from polyformer import IdeficsForVisionText2Text, IdeficsProcessor  # doctest: +SKIP
        >>> model = IdeficsForVisionText2Text.from_pretrained("HuggingFaceM4/idefics-9b")  # doctest: +SKIP
        >>> processor = IdeficsProcessor.from_pretrained("HuggingFaceM4/idefics-9b")  # doctest: +SKIP
        >>> inputs = processor([["User:", image, "What is in the picture?\\nAssistant:"]])  # doctest: +SKIP
        >>> ids = model.generate(**inputs, max_new_tokens=20)  # doctest: +SKIP
    """

    _keys_to_ignore_on_load_missing = [r"lm_head.weight"]
    # (4.37 lists the first two; the third, tied to the additional embedding rows, is not a missing weight either)
    _tied_weights_keys = ["model.embed_tokens.weight", "lm_head.weight", "lm_head.additional_fc.weight"]

    def __init__(self, config: IdeficsConfig, vision_model=None):
        super().__init__(config)
        self.model = IdeficsModel(config)
        self.lm_head = IdeficsDecoupledLinear(config.hidden_size, config.vocab_size, config.additional_vocab_size,
                                              bias=False, partially_freeze=config.freeze_lm_head)
        self.post_init()

    def tie_weights(self) -> None:
        """With tie_word_embeddings, lm_head shares embed_tokens' regular rows and additional_fc its
        additional rows."""
        output, embeddings = self.get_output_embeddings(), self.get_input_embeddings()
        if self.config.tie_word_embeddings:
            output.weight = embeddings.weight
            if getattr(embeddings, "num_additional_embeddings", 0) > 0:
                output.additional_fc.weight = embeddings.additional_embedding.weight

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, pixel_values=None, image_encoder_embeddings=None, perceiver_embeddings=None,
                image_attention_mask=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, interpolate_pos_encoding=False, return_dict=None):
        """As `IdeficsModel.forward`, plus labels (B, T) (shifted inside; -100 ignored)."""
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.model.outputs(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            past_key_values=past_key_values, inputs_embeds=inputs_embeds, pixel_values=pixel_values,
            image_encoder_embeddings=image_encoder_embeddings, perceiver_embeddings=perceiver_embeddings,
            image_attention_mask=image_attention_mask, use_cache=use_cache, output_attentions=options.output_attentions,
            output_hidden_states=options.output_hidden_states, interpolate_pos_encoding=interpolate_pos_encoding)
        logits = self.lm_head(out.last_hidden_state)  # (B, T, V + additional)
        loss = None if labels is None else _lm_loss(logits, labels, attention_mask)
        output = IdeficsCausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions,
                                               out.image_hidden_states)
        return finish(output, options.return_dict)

    # --- generate() ---------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, *args, **kwargs):
        """`GenerationMixin.generate` with images: pixel_values (or image_encoder_embeddings /
        perceiver_embeddings) and image_attention_mask (B, T, N) as for `forward`. The vision encoder (and
        perceiver) run once, before decoding; each generated token sees the images of the prompt's last
        token; each cross-attention layer projects the images once per call."""
        images = {name: kwargs.pop(name) for name in IMAGE_INPUTS if kwargs.get(name) is not None}
        interpolate = kwargs.pop("interpolate_pos_encoding", False)
        if images:  # without images, the first forward raises the model's error
            states = self.model.image_states(**images, interpolate_pos_encoding=interpolate)
            kwargs["perceiver_embeddings" if self.config.use_resampler else "image_encoder_embeddings"] = states
        return super().generate(*args, **kwargs)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None, position_ids=None,
                                      use_cache=None, image_attention_mask=None, **kwargs):
        """The decoder-only step inputs, with the image_attention_mask rows of the tokens fed this step
        (tokens past the prompt repeat its last row, as the reference)."""
        step = super().prepare_inputs_for_generation(input_ids, past_key_values=past_key_values,
                                                     attention_mask=attention_mask, position_ids=position_ids,
                                                     use_cache=use_cache, **kwargs)
        end = input_ids.shape[1]
        step["image_attention_mask"] = image_rows(image_attention_mask, end - step["input_ids"].shape[1], end)
        return step

    def static_step_context(self, model_kwargs: dict) -> Optional[dict]:
        """What each token after the prompt sees, once per call for generate()'s one-token step
        (generation/static_step.py): the images of the prompt's last token (its image_attention_mask row,
        as the forward path repeats it). None without images (the forward has raised already)."""
        given = {name: model_kwargs[name] for name in IMAGE_INPUTS if model_kwargs.get(name) is not None}
        if len(given) != 1:
            return None
        images = self.model.image_states(**given,
                                         interpolate_pos_encoding=model_kwargs.get("interpolate_pos_encoding", False))
        image_mask = model_kwargs.get("image_attention_mask")
        prompt = None if image_mask is None else image_mask.shape[1]
        rows = None if image_mask is None else image_rows(image_mask, prompt, prompt + 1)  # (B, 1, N)
        return {"images": image_context(images, rows, batch=images.shape[0], length=1,
                                        dtype=self.model.embed_tokens.weight.dtype)}

    def static_step_logits(self, *, input_ids, token_type_ids, cache, mask, tables, images) -> torch.Tensor:
        """The decoder's one-token step with the call's images, then the LM head as `forward` applies it."""
        hidden = self.model.decode_step(input_ids=input_ids, token_type_ids=token_type_ids, cache=cache, mask=mask,
                                        tables=tables, context={"images": images})
        return self.lm_head(hidden)  # (B, 1, V + additional)

    def _init_generation_cache(self, batch_size: int, max_length: int) -> IdeficsGenerationCache:
        config = self.config
        heads = config.num_attention_heads
        return IdeficsGenerationCache(config.num_hidden_layers, batch=batch_size, n_kv_heads=heads,
                                      head_dim=config.hidden_size // heads, max_length=max_length, dtype=self.dtype,
                                      device=self.device)


def _lm_loss(logits: torch.Tensor, labels: torch.Tensor, attention_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy, as 4.37's IDEFICS: with an attention mask only the positions whose next
    token is real count; -100 labels are ignored."""
    if attention_mask is None:
        return causal_lm_loss(logits, labels)
    keep = attention_mask[:, -logits.shape[1]:][:, 1:].to(logits.device) != 0  # (B, T - 1)
    return cross_entropy_loss(logits[:, :-1][keep], labels.to(logits.device)[:, 1:][keep])


__all__: List[str] = ["IdeficsPreTrainedModel", "IdeficsModel", "IdeficsForVisionText2Text",
                      "IdeficsBaseModelOutputWithPast", "IdeficsCausalLMOutputWithPast"]
