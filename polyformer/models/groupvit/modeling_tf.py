"""GroupViT in TensorFlow (Keras 3): the PyTorch model's outline (modeling_torch.py; the vision tower in
vision_tf.py) on polyformer/tf.

Notation: B images, N texts, T text length, C width, P patches, G a stage's group tokens, O its output groups,
D projection_dim.

    groupvit/vision_model: patches (conv) -> LayerNorm -> + positions -> stages (CLIP layers over tokens and
        group tokens, then a grouping block: every token assigned to one group) -> layernorm -> mean
    groupvit/text_model: CLIP's causal text tower (polyformer/tf/clip_layers.py)
    groupvit/{visual,text}_projection.{0,1,3}: Dense -> BatchNorm -> ReLU -> Dense; logits = exp(logit_scale) *
        normalised text @ normalised image^T; segmentation spreads group-text logits over the pixels

Weight names are the reference's TF names (groupvit/vision_model/encoder/stages_._0/downsample/assign/q_proj/
kernel, groupvit/logit_scale). pixel_values are channels first (B, 3, H, W), as in every framework.
As 4.37's TF classes, there is no interpolate_pos_encoding: images must be config.image_size.
"""

from __future__ import annotations

from dataclasses import make_dataclass
from typing import Any, Tuple

from ...outputs import ModelOutput, finish
from ...tf.backend import keras, tf
from ...tf.clip_layers import TFCLIPTextTransformer, contrastive_loss
from ...tf.layers import Layer, Linear
from ...tf.modeling import TFPreTrainedModel, to_tensor
from ...tf.outputs import TFOutputMixin
from .configuration import GroupViTConfig, GroupViTTextConfig, GroupViTVisionConfig
from .vision_tf import TFGroupViTVisionTransformer, grouping_from_attentions


class _NestedTuple:
    def to_tuple(self) -> Tuple[Any, ...]:
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in super().to_tuple())


TFGroupViTModelOutput = make_dataclass(
    "TFGroupViTModelOutput", [(f, Any, None) for f in ("loss", "logits_per_image", "logits_per_text",
                                                      "segmentation_logits", "text_embeds", "image_embeds",
                                                      "text_model_output", "vision_model_output")],
    bases=(TFOutputMixin, _NestedTuple, ModelOutput), namespace={"__module__": __name__, "__doc__": (
        "`logits_per_image` (B, N), `logits_per_text` (N, B); `loss` (1,) (return_loss); `segmentation_logits` "
        "(B, N, H, W) (output_segmentation); normalised `text_embeds` (N, D), `image_embeds` (B, D); the towers' "
        "outputs. `to_tuple()` turns those into tuples.")})


# --- the pair -----------------------------------------------------------------------------------------------
class TFBatchNorm(Layer):
    """BatchNorm over the last axis (momentum 0.9, eps 1e-5): moving statistics in inference, batch statistics
    (and a moving-average update) in training, as Keras's BatchNormalization in the reference."""

    def __init__(self, dim: int, name: str, momentum: float = 0.9, eps: float = 1e-5):
        super().__init__(name=name)
        self.momentum, self.eps = momentum, eps
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=(dim,), initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(dim,), initializer="ones", trainable=False)

    def call(self, x, training=False):
        if training:
            mean, variance = tf.nn.moments(x, axes=[0])
            for moving, value in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.assign(moving * self.momentum + value * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.eps)


def projection_head(name: str, width: int, inner: int, out: int, std: float) -> list:
    """Dense -> BatchNorm -> ReLU -> Dense, named `<name>.0`, `.1`, (`.2` holds no weights) `.3`."""
    return [Linear(width, inner, std=std, name=f"{name}.0"), TFBatchNorm(inner, name=f"{name}.1"),
            Linear(inner, out, std=std, name=f"{name}.3")]


def project(head: list, x: tf.Tensor, training: bool) -> tf.Tensor:
    dense, norm, out = head
    return out(tf.nn.relu(norm(dense(x), training=training)))


def normalize(x: tf.Tensor) -> tf.Tensor:
    return x / tf.norm(x, axis=-1, keepdims=True)


class TFGroupViTMainLayer(Layer):
    """`groupvit`: the towers wanted by the model (text, vision or both) and, for the pair, the projections."""

    def __init__(self, config, towers: Tuple[str, ...], name: str = "groupvit"):
        super().__init__(name=name)
        if "text" in towers:
            self.text_model = TFCLIPTextTransformer(config.text_config if len(towers) == 2 else config)
        if "vision" in towers:
            self.vision_model = TFGroupViTVisionTransformer(config.vision_config if len(towers) == 2 else config)
        if len(towers) == 2:
            std, inner, dim = config.initializer_range, config.projection_intermediate_dim, config.projection_dim
            self.visual_projection = projection_head("visual_projection", config.vision_config.hidden_size, inner, dim, std)
            self.text_projection = projection_head("text_projection", config.text_config.hidden_size, inner, dim, std)
            self.logit_scale = self.add_weight(name="logit_scale", shape=(1,),
                                               initializer=keras.initializers.Constant(config.logit_scale_init_value))


class TFGroupViTPreTrainedModel(TFPreTrainedModel):
    config_class = GroupViTConfig
    base_model_prefix = "groupvit"
    pt_scalars = ("logit_scale",)
    towers: Tuple[str, ...] = ("text", "vision")

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        for tower, cls in (("text_config", GroupViTTextConfig), ("vision_config", GroupViTVisionConfig)):
            if len(self.towers) == 2 and not isinstance(getattr(config, tower), cls):
                raise ValueError(f"config.{tower} is expected to be of type {cls.__name__} but is of type "
                                 f"{type(getattr(config, tower))}.")
        self.groupvit = TFGroupViTMainLayer(config, self.towers)


class TFGroupViTTextModel(TFGroupViTPreTrainedModel):
    """GroupViT's text tower alone (CLIP's): last_hidden_state (B, T, C), pooler_output (B, C) at the
    end-of-text token."""

    config_class = GroupViTTextConfig
    towers = ("text",)

    def get_input_embeddings(self):
        return self.groupvit.text_model.embeddings.token_embedding

    def call(self, input_ids=None, attention_mask=None, position_ids=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, training=False):
        output_attentions, output_hidden_states, return_dict = self.config.output_options(
            output_attentions, output_hidden_states, return_dict)
        out = self.groupvit.text_model(input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                       output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, training=training)
        return finish(out, return_dict)


class TFGroupViTVisionModel(TFGroupViTPreTrainedModel):
    """GroupViT's vision tower alone: last_hidden_state (B, O, C) the final groups, pooler_output (B, C) their
    mean, hidden_states each stage's input and the last output, attentions the grouping stages' soft
    assignments (B, O_i, L_i)."""

    config_class = GroupViTVisionConfig
    main_input_name = "pixel_values"
    towers = ("vision",)

    def call(self, pixel_values=None, output_attentions=None, output_hidden_states=None, return_dict=None,
             training=False):
        output_attentions, output_hidden_states, return_dict = self.config.output_options(
            output_attentions, output_hidden_states, return_dict)
        out = self.groupvit.vision_model(pixel_values, output_attentions=output_attentions,
                                         output_hidden_states=output_hidden_states, training=training)
        return finish(out, return_dict)


class TFGroupViTModel(TFGroupViTPreTrainedModel):
    """Text and vision towers with projections into one space: image-text logits, CLIP's contrastive loss
    (return_loss) and text-driven segmentation (output_segmentation).

    Example (zero-shot classification):
        >>> from polyformer import CLIPProcessor, TFGroupViTModel
        >>> processor = CLIPProcessor.from_pretrained("nvidia/groupvit-gcc-yfcc")
        >>> model = TFGroupViTModel.from_pretrained("nvidia/groupvit-gcc-yfcc")
        >>> inputs = processor(text=["a photo of a cat", "a photo of a dog"], images=image, return_tensors="np",
        ...                    padding=True)
        >>> probs = tf.nn.softmax(model(**inputs).logits_per_image, axis=1)  # (images, texts)
    """

    def get_text_features(self, input_ids=None, attention_mask=None, position_ids=None, output_attentions=None,
                          output_hidden_states=None, return_dict=None, training=False) -> tf.Tensor:
        """(N, D) text features: the projection of the pooled text output, not normalised."""
        options = self.config.output_options(output_attentions, output_hidden_states)
        text = self.groupvit.text_model(to_tensor(input_ids), attention_mask=to_tensor(attention_mask),
                                        position_ids=to_tensor(position_ids), output_attentions=options.output_attentions,
                                        output_hidden_states=options.output_hidden_states, training=training)
        return project(self.groupvit.text_projection, text.pooler_output, training)

    def get_image_features(self, pixel_values=None, output_attentions=None, output_hidden_states=None,
                           return_dict=None, training=False) -> tf.Tensor:
        """(B, D) image features: the projection of the pooled vision output, not normalised."""
        options = self.config.output_options(output_attentions, output_hidden_states)
        vision = self.groupvit.vision_model(to_tensor(pixel_values), output_attentions=options.output_attentions,
                                            output_hidden_states=options.output_hidden_states, training=training)
        return project(self.groupvit.visual_projection, vision.pooler_output, training)

    def call(self, input_ids=None, pixel_values=None, attention_mask=None, position_ids=None, return_loss=None,
             output_attentions=None, output_hidden_states=None, output_segmentation=None, return_dict=None,
             training=False):
        """input_ids (N, T), attention_mask (N, T), position_ids (N|1, T): the texts; pixel_values (B, 3, H, W);
        return_loss: CLIP's loss (N == B, text i with image i); output_segmentation: segmentation_logits
        (B, N, H, W), which turns output_attentions on."""
        if input_ids is None:
            raise ValueError("You have to specify either input_ids")
        if pixel_values is None:
            raise ValueError("You have to specify pixel_values")
        output_attentions, output_hidden_states, return_dict = self.config.output_options(
            True if output_segmentation else output_attentions, output_hidden_states, return_dict)
        main = self.groupvit
        vision = main.vision_model(pixel_values, output_attentions=output_attentions,
                                   output_hidden_states=output_hidden_states, training=training)
        text = main.text_model(input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states, training=training)
        image_embeds = normalize(project(main.visual_projection, vision.pooler_output, training))  # (B, D)
        text_embeds = normalize(project(main.text_projection, text.pooler_output, training))  # (N, D)
        logit_scale = tf.exp(main.logit_scale)
        logits_per_text = tf.matmul(text_embeds, image_embeds, transpose_b=True) * logit_scale  # (N, B)
        segmentation = None
        if output_segmentation:
            segmentation = self.segment(vision, text_embeds, logit_scale, pixel_values.shape[2:], training)
        loss = contrastive_loss(logits_per_text) if return_loss else None
        out = TFGroupViTModelOutput(loss, tf.transpose(logits_per_text), logits_per_text, segmentation, text_embeds,
                                    image_embeds, text, vision)
        return finish(out, return_dict)

    def segment(self, vision, text_embeds, logit_scale, size, training) -> tf.Tensor:
        """(B, N, H, W): each final group's projection scored against every text, spread over the pixels by the
        chained soft assignments; logit_scale is applied twice, as in the reference."""
        groups = vision.last_hidden_state  # (B, O, C)
        embeds = normalize(project(self.groupvit.visual_projection, tf.reshape(groups, (-1, groups.shape[-1])), training))
        patches = self.groupvit.vision_model.embeddings.patch_embeddings
        grid = tuple(side // patch for side, patch in zip(patches.image_size, patches.patch_size))
        grouping = grouping_from_attentions(vision.attentions, grid, tuple(size))  # (B, O, H, W)
        batch, n_groups = tf.shape(groups)[0], grouping.shape[1]
        logits = tf.reshape(tf.matmul(embeds, text_embeds, transpose_b=True) * logit_scale, (batch, n_groups, -1))
        seg = tf.matmul(tf.transpose(logits, (0, 2, 1)), tf.reshape(grouping, (batch, n_groups, -1))) * logit_scale
        return tf.reshape(seg, (batch, -1, *size))  # (B, N, H, W)
