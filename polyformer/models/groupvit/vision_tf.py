"""GroupViT's vision tower in TensorFlow (Keras 3), the outline of vision_torch.py under the reference's TF names.

Notation: B images, C width, P patches, L tokens entering a stage, G a stage's group tokens, O its output groups.

    pixels (B, 3, H, W) --patch conv, LayerNorm, + positions--> tokens (B, P, C)
    stage i (encoder/stages_._i): [tokens ; group tokens] --CLIP encoder layers--> split --grouping block
        (downsample: every token assigned to one group, hard argmax with a straight-through gradient; Gumbel
        noise in training)--> (B, O, C); the next stage's group tokens add a token-mixing MLP of these
    --layernorm--> last_hidden_state (B, O_last, C) --mean--> pooler_output (B, C)

Segmentation chains the stages' soft assignments from patches to final groups (`grouping_from_attentions`).
"""

from __future__ import annotations

import collections.abc
from typing import Tuple

from ...tf.backend import tf
from ...tf.clip_layers import TFCLIPAttention, TFCLIPEncoderLayer, TFCLIPMLP
from ...tf.layers import Layer, LayerNorm, Linear, dropout, initializer, run_layers
from ...tf.outputs import TFBaseModelOutputWithPooling
from .configuration import GroupViTVisionConfig


# --- assignment ---------------------------------------------------------------------------------------
def hard_softmax(logits: tf.Tensor, axis: int, noise: bool = False) -> tf.Tensor:
    """One-hot at the softmax's argmax along `axis`, carrying the softmax's gradient (straight-through);
    with `noise`, of logits + Gumbel(0, 1) noise (training)."""
    if noise:
        uniform = tf.random.uniform(tf.shape(logits), minval=1e-20, maxval=1.0, dtype=logits.dtype)
        logits = logits - tf.math.log(-tf.math.log(uniform))
    soft = tf.nn.softmax(logits, axis=axis)
    hard = tf.one_hot(tf.argmax(soft, axis=axis), depth=tf.shape(logits)[axis], axis=axis % logits.shape.rank,
                      dtype=soft.dtype)
    return hard - tf.stop_gradient(soft) + soft


class TFGroupViTAssignAttention(Layer):
    """Groups (queries) over tokens; each token picks one group (softmax over the groups), each group
    averages the tokens it won."""

    def __init__(self, config: GroupViTVisionConfig, name: str = "assign"):
        super().__init__(name=name)
        width = config.hidden_size
        self.scale, self.assign_eps = width ** -0.5, config.assign_eps
        self.q_proj, self.k_proj, self.v_proj, self.proj = (
            Linear(width, width, std=config.initializer_range, name=n) for n in ("q_proj", "k_proj", "v_proj", "proj"))

    def call(self, groups, tokens, training=False):
        """groups (B, O, C), tokens (B, L, C) -> new groups (B, O, C), soft assignment (B, O, L)."""
        scores = tf.matmul(self.q_proj(groups), self.k_proj(tokens), transpose_b=True) * self.scale  # (B, O, L)
        assign = hard_softmax(scores, axis=-2, noise=training)
        assign = assign / (tf.reduce_sum(assign, axis=-1, keepdims=True) + self.assign_eps)
        return self.proj(tf.matmul(assign, self.v_proj(tokens))), tf.nn.softmax(scores, axis=-2)


class TFGroupViTMixerMLP(TFCLIPMLP):
    """An MLP across tokens instead of channels: (B, G, C) -> (B, O, C)."""

    def call(self, x):
        return tf.transpose(super().call(tf.transpose(x, (0, 2, 1))), (0, 2, 1))


class TFGroupViTCrossAttentionLayer(Layer):
    """Groups attend to the tokens: x = groups + attn; x = x + mlp(norm2(x)); norm_post(x)."""

    def __init__(self, config: GroupViTVisionConfig, name: str = "pre_assign_attn"):
        super().__init__(name=name)
        self.attn = TFCLIPAttention(config, name="attn")
        self.norm2 = LayerNorm(config.hidden_size, config.layer_norm_eps, name="norm2")
        self.mlp = TFCLIPMLP(config)
        self.norm_post = LayerNorm(config.hidden_size, config.layer_norm_eps, name="norm_post")

    def call(self, groups, tokens, training=False):
        x = groups + self.attn(groups, context=tokens, training=training)[0]
        return self.norm_post(x + self.mlp(self.norm2(x)))


class TFGroupViTTokenAssign(Layer):
    """The grouping block: G group tokens -> O output groups, each the merge of the tokens assigned to it."""

    def __init__(self, config: GroupViTVisionConfig, num_group_token: int, num_output_group: int,
                 name: str = "downsample"):
        super().__init__(name=name)
        width, ratio, eps = config.hidden_size, config.assign_mlp_ratio, config.layer_norm_eps
        ratio = ratio if isinstance(ratio, collections.abc.Iterable) else (ratio, ratio)
        tokens_dim, channels_dim = (int(r * width) for r in ratio)
        self.norm_tokens = LayerNorm(width, eps, name="norm_tokens")
        self.mlp_inter = TFGroupViTMixerMLP(config, num_group_token, tokens_dim, num_output_group, name="mlp_inter")
        self.norm_post_tokens = LayerNorm(width, eps, name="norm_post_tokens")
        self.norm_x = LayerNorm(width, eps, name="norm_x")
        self.pre_assign_attn = TFGroupViTCrossAttentionLayer(config)
        self.assign = TFGroupViTAssignAttention(config)
        self.norm_new_x = LayerNorm(width, eps, name="norm_new_x")
        self.mlp_channels = TFCLIPMLP(config, width, channels_dim, width, name="mlp_channels")

    def call(self, tokens, group_tokens, training=False):
        """tokens (B, L, C), group_tokens (B, G, C) -> groups (B, O, C), soft assignment (B, O, L)."""
        tokens = self.norm_x(tokens)
        groups = self.norm_post_tokens(self.mlp_inter(self.norm_tokens(group_tokens)))  # (B, O, C)
        groups = self.pre_assign_attn(groups, tokens, training=training)
        merged, attention = self.assign(groups, tokens, training=training)
        merged = merged + groups
        return merged + self.mlp_channels(self.norm_new_x(merged)), attention


# --- vision tower ---------------------------------------------------------------------------------------
def _pair(x) -> Tuple[int, int]:
    return tuple(x) if isinstance(x, collections.abc.Iterable) else (x, x)


class _Conv(Layer):
    """Weights of a convolution: kernel (kh, kw, in, out), the transpose of torch's Conv2d weight, and bias."""

    def __init__(self, kernel_size: Tuple[int, int], in_channels: int, out_channels: int, std: float,
                 name: str = "projection"):
        super().__init__(name=name)
        self.kernel = self.add_weight(name="kernel", shape=(*kernel_size, in_channels, out_channels),
                                      initializer=initializer(std))
        self.bias = self.add_weight(name="bias", shape=(out_channels,), initializer="zeros")


class TFGroupViTPatchEmbeddings(Layer):
    """A patch-size-strided convolution: (B, 3, H, W) -> (B, P, C); kernel (kh, kw, in, out)."""

    def __init__(self, config: GroupViTVisionConfig, name: str = "patch_embeddings"):
        super().__init__(name=name)
        self.image_size, self.patch_size = _pair(config.image_size), _pair(config.patch_size)
        self.num_channels, self.width = config.num_channels, config.hidden_size
        self.num_patches = (self.image_size[0] // self.patch_size[0]) * (self.image_size[1] // self.patch_size[1])
        self.projection = _Conv(self.patch_size, config.num_channels, config.hidden_size, config.initializer_range)

    def call(self, pixel_values):
        shape = pixel_values.shape
        if shape.rank != 4 or shape[1] != self.num_channels:
            raise ValueError(f"pixel_values must be (batch_size, {self.num_channels}, height, width), channels first; "
                             f"got shape {tuple(shape)}")
        if tuple(shape[2:]) != self.image_size:
            raise ValueError(f"Input image size ({shape[2]}*{shape[3]}) doesn't match model "
                             f"({self.image_size[0]}*{self.image_size[1]}).")
        x = tf.nn.conv2d(tf.transpose(pixel_values, (0, 2, 3, 1)), self.projection.kernel, self.patch_size, "VALID")
        return tf.reshape(x + self.projection.bias, (-1, self.num_patches, self.width))  # (B, P, C)


class TFGroupViTVisionEmbeddings(Layer):
    """patches -> LayerNorm -> + learnt positions -> dropout."""

    def __init__(self, config: GroupViTVisionConfig, name: str = "embeddings"):
        super().__init__(name=name)
        self.patch_embeddings = TFGroupViTPatchEmbeddings(config)
        self.layernorm = LayerNorm(config.hidden_size, config.layer_norm_eps, name="layernorm")
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(1, self.patch_embeddings.num_patches, config.hidden_size),
            initializer="zeros")
        self.rate = config.dropout

    def call(self, pixel_values, training=False):
        x = self.layernorm(self.patch_embeddings(pixel_values)) + self.position_embeddings
        return dropout(x, self.rate, training)


class TFGroupViTStage(Layer):
    """depth encoder layers over [tokens ; group tokens], then (with group tokens) the grouping block."""

    def __init__(self, config: GroupViTVisionConfig, depth: int, num_prev_group_token: int, num_group_token: int,
                 num_output_group: int, name: str):
        super().__init__(name=name)
        self.num_group_token = num_group_token
        self.layers = [TFCLIPEncoderLayer(config, name=f"layers_._{i}") for i in range(depth)]
        self.downsample = TFGroupViTTokenAssign(config, num_group_token, num_output_group) if num_group_token else None
        self.group_projector = None
        if num_prev_group_token > 0 and num_group_token > 0:
            self.group_projector = [
                LayerNorm(config.hidden_size, config.layer_norm_eps, name="group_projector.0"),
                TFGroupViTMixerMLP(config, num_prev_group_token, config.hidden_size // 2, num_group_token,
                                   name="group_projector.1")]
        self.group_token = self.add_weight(name="group_token", shape=(1, num_group_token, config.hidden_size),
                                           initializer="zeros") if num_group_token else None

    def call(self, x, prev_group_token=None, training=False):
        """x (B, L, C) -> (x (B, O, C) or (B, L, C), group tokens (B, G, C) | None, soft assignment | None)."""
        if self.group_token is None:
            return run_layers(self.layers, x, training=training)[0], None, None
        group = tf.tile(self.group_token, (tf.shape(x)[0], 1, 1))
        if self.group_projector is not None:
            norm, mixer = self.group_projector
            group = group + mixer(norm(prev_group_token))
        x = run_layers(self.layers, tf.concat([x, group], axis=1), training=training)[0]
        x, group = x[:, : -self.num_group_token], x[:, -self.num_group_token:]
        x, attention = self.downsample(x, group, training=training)
        return x, group, attention


class TFGroupViTVisionEncoder(Layer):
    def __init__(self, config: GroupViTVisionConfig, name: str = "encoder"):
        super().__init__(name=name)
        depths, groups, outputs = config.depths, config.num_group_tokens, config.num_output_groups
        self.stages = [TFGroupViTStage(config, depths[i], outputs[i - 1] if i else 0, groups[i], outputs[i],
                                       name=f"stages_._{i}") for i in range(len(depths))]

    def call(self, x, output_hidden_states=False, output_attentions=False, training=False):
        """-> (x, every stage's input and the last output | None, the grouping stages' assignments | None)."""
        hidden_states, attentions, group = (), (), None
        for stage in self.stages:
            hidden_states += (x,)
            x, group, attention = stage(x, group, training=training)
            if attention is not None:
                attentions += (attention,)
        return x, hidden_states + (x,) if output_hidden_states else None, attentions if output_attentions else None


class TFGroupViTVisionTransformer(Layer):
    def __init__(self, config: GroupViTVisionConfig, name: str = "vision_model"):
        super().__init__(name=name)
        self.embeddings = TFGroupViTVisionEmbeddings(config)
        self.encoder = TFGroupViTVisionEncoder(config)
        self.layernorm = LayerNorm(config.hidden_size, config.layer_norm_eps, name="layernorm")

    def call(self, pixel_values=None, output_attentions=False, output_hidden_states=False, training=False):
        if pixel_values is None:
            raise ValueError("You have to specify pixel_values")
        x = self.embeddings(tf.cast(pixel_values, tf.float32), training=training)
        x, hidden_states, attentions = self.encoder(x, output_hidden_states=output_hidden_states,
                                                    output_attentions=output_attentions, training=training)
        x = self.layernorm(x)  # (B, O, C)
        return TFBaseModelOutputWithPooling(x, tf.reduce_mean(x, axis=1), hidden_states, attentions)


def grouping_from_attentions(attentions: Tuple[tf.Tensor, ...], grid: Tuple[int, int], size: Tuple[int, int]) -> tf.Tensor:
    """The stages' soft assignments (B, O_i, L_i) chained from the patches (a grid of rows x columns) to the final
    groups, spread bilinearly over the image of `size`: (B, O_last, height, width), without gradient."""
    if not attentions:
        raise ValueError("output_segmentation needs a grouping stage (num_group_tokens > 0 somewhere)")
    assign = tf.transpose(attentions[0], (0, 2, 1))  # (B, P, O_1)
    for stage in attentions[1:]:
        assign = tf.matmul(assign, tf.transpose(stage, (0, 2, 1)))  # (B, P, O_i)
    maps = tf.reshape(assign, (-1, *grid, assign.shape[-1]))  # (B, rows, columns, O)
    maps = tf.image.resize(maps, size, method="bilinear")
    return tf.stop_gradient(tf.transpose(maps, (0, 3, 1, 2)))
