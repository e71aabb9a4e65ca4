"""polyformer: transformers-4.37-compatible models that are small, fast and readable.

Public names are imported lazily: `import polyformer` loads no deep-learning framework; the first use
of `polyformer.DistilBertModel` imports torch, and TensorFlow / JAX are imported only by their classes.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List

__version__ = "0.1.0"

# module (relative to this package) -> the public names it defines
_EXPORTS: Dict[str, List[str]] = {
    ".configuration": ["PretrainedConfig"],
    ".quantization_config": ["TorchAoConfig"],
    ".pt.quantize": ["quantize_"],
    ".pt.packing": ["pack_linears_"],
    ".outputs": [
        "BaseModelOutputWithPooling",
        "ModelOutput", "BaseModelOutput", "MaskedLMOutput", "SequenceClassifierOutput",
        "MultipleChoiceModelOutput", "TokenClassifierOutput", "QuestionAnsweringModelOutput",
        "BaseModelOutputWithPast", "CausalLMOutputWithPast", "SequenceClassifierOutputWithPast",
        "BaseModelOutputWithPastAndCrossAttentions", "Seq2SeqModelOutput", "Seq2SeqLMOutput",
        "Seq2SeqSequenceClassifierOutput", "Seq2SeqQuestionAnsweringModelOutput", "CausalLMOutputWithCrossAttentions",
    ],
    ".pt.modeling": ["PreTrainedModel"],
    ".tokenization.base": ["BatchEncoding", "PreTrainedTokenizerBase"],
    ".tokenization.encoding": ["AddedToken", "TensorType", "PaddingStrategy", "TruncationStrategy", "CharSpan", "TokenSpan"],
    ".tokenization.special_tokens": ["SpecialTokensMixin"],
    ".tokenization.slow": ["PreTrainedTokenizer"],
    ".tokenization.fast": ["PreTrainedTokenizerFast"],
    ".tokenization.gpt2": ["GPT2Tokenizer", "GPT2TokenizerFast"],
    ".image_processing.base": ["BatchFeature", "ImageProcessingMixin", "BaseImageProcessor"],
    ".image_processing.processor": ["ProcessorMixin"],
    ".models.clip.tokenization": ["CLIPTokenizer", "CLIPTokenizerFast"],
    ".models.clip.image_processing": ["CLIPImageProcessor"],
    ".models.idefics.image_processing": ["IdeficsImageProcessor"],
    ".models.clip.processing": ["CLIPProcessor"],
    ".models.idefics.processing": ["IdeficsProcessor"],
    ".auto": [
        "AutoConfig", "AutoTokenizer", "AutoModel", "AutoModelForMaskedLM", "AutoModelForSequenceClassification",
        "AutoModelForMultipleChoice", "AutoModelForTokenClassification", "AutoModelForQuestionAnswering",
        "AutoModelForCausalLM", "AutoModelForSeq2SeqLM", "AutoImageProcessor", "AutoProcessor",
    ],
    ".models.distilbert.configuration": ["DistilBertConfig"],
    ".models.distilbert.tokenization": ["DistilBertTokenizer", "DistilBertTokenizerFast"],
    ".models.distilbert.modeling_torch": [
        "DistilBertPreTrainedModel", "DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
        "DistilBertForMultipleChoice", "DistilBertForTokenClassification", "DistilBertForQuestionAnswering",
    ],
    ".models.distilbert.modeling_tf": [
        "TFDistilBertPreTrainedModel", "TFDistilBertModel", "TFDistilBertForMaskedLM",
        "TFDistilBertForSequenceClassification", "TFDistilBertForMultipleChoice", "TFDistilBertForTokenClassification",
        "TFDistilBertForQuestionAnswering",
    ],
    ".tf.auto": [
        "TFAutoModel", "TFAutoModelForMaskedLM", "TFAutoModelForSequenceClassification", "TFAutoModelForMultipleChoice",
        "TFAutoModelForTokenClassification", "TFAutoModelForQuestionAnswering", "TFAutoModelForCausalLM",
    ],
    ".models.canine.configuration": ["CanineConfig"],
    ".models.canine.tokenization": ["CanineTokenizer"],
    ".models.canine.modeling_torch": [
        "CanineModelOutputWithPooling", "CaninePreTrainedModel", "CanineModel", "CanineLayer", "CanineForSequenceClassification",
        "CanineForMultipleChoice", "CanineForTokenClassification", "CanineForQuestionAnswering",
    ],
    ".pt.cache": ["Cache", "DynamicCache", "StaticCache", "EncoderDecoderCache"],
    ".models.codegen.configuration": ["CodeGenConfig"],
    ".models.codegen.modeling_torch": ["CodeGenPreTrainedModel", "CodeGenModel", "CodeGenForCausalLM"],
    ".models.codegen.tokenization": ["CodeGenTokenizer", "CodeGenTokenizerFast"],
    ".models.gptj.configuration": ["GPTJConfig"],
    ".models.gptj.modeling_torch": [
        "GPTJPreTrainedModel", "GPTJModel", "GPTJForCausalLM", "GPTJForSequenceClassification", "GPTJForQuestionAnswering",
    ],
    ".models.gptj.modeling_tf": [
        "TFGPTJPreTrainedModel", "TFGPTJModel", "TFGPTJForCausalLM", "TFGPTJForSequenceClassification",
        "TFGPTJForQuestionAnswering",
    ],
    ".models.llama.configuration": ["LlamaConfig"],
    ".models.llama.modeling_torch": ["LlamaPreTrainedModel", "LlamaModel", "LlamaForCausalLM"],
    ".models.llama.tokenization": ["LlamaTokenizer", "LlamaTokenizerFast"],
    ".models.llama.tokenization_code_llama": ["CodeLlamaTokenizer", "CodeLlamaTokenizerFast"],
    ".models.mvp.configuration": ["MvpConfig"],
    ".models.mvp.tokenization": ["MvpTokenizer", "MvpTokenizerFast"],
    ".models.mvp.modeling_torch": [
        "MvpPreTrainedModel", "MvpModel", "MvpForConditionalGeneration", "MvpForSequenceClassification",
        "MvpForQuestionAnswering", "MvpForCausalLM",
    ],
    ".models.groupvit.configuration": ["GroupViTConfig", "GroupViTTextConfig", "GroupViTVisionConfig"],
    ".models.groupvit.modeling_torch": [
        "GroupViTPreTrainedModel", "GroupViTModel", "GroupViTTextModel", "GroupViTVisionModel", "GroupViTModelOutput",
    ],
    ".models.groupvit.modeling_tf": [
        "TFGroupViTPreTrainedModel", "TFGroupViTModel", "TFGroupViTTextModel", "TFGroupViTVisionModel",
        "TFGroupViTModelOutput",
    ],
    ".models.idefics.configuration": ["IdeficsConfig", "IdeficsVisionConfig", "IdeficsPerceiverConfig"],
    ".models.idefics.modeling_torch": [
        "IdeficsPreTrainedModel", "IdeficsModel", "IdeficsForVisionText2Text", "IdeficsBaseModelOutputWithPast",
        "IdeficsCausalLMOutputWithPast",
    ],
    ".jx.modeling": ["FlaxPreTrainedModel"],
    ".jx.outputs": [
        "FlaxBaseModelOutput", "FlaxMaskedLMOutput", "FlaxCausalLMOutput", "FlaxSequenceClassifierOutput",
        "FlaxMultipleChoiceModelOutput", "FlaxTokenClassifierOutput", "FlaxQuestionAnsweringModelOutput",
        "FlaxGreedySearchOutput", "FlaxSampleOutput", "FlaxBeamSearchOutput",
    ],
    ".models.distilbert.modeling_flax": [
        "FlaxDistilBertPreTrainedModel", "FlaxDistilBertModel", "FlaxDistilBertForMaskedLM",
        "FlaxDistilBertForSequenceClassification", "FlaxDistilBertForMultipleChoice",
        "FlaxDistilBertForTokenClassification", "FlaxDistilBertForQuestionAnswering",
    ],
    ".models.gptj.modeling_flax": ["FlaxGPTJPreTrainedModel", "FlaxGPTJModel", "FlaxGPTJForCausalLM"],
    ".jx.auto": [
        "FlaxAutoModel", "FlaxAutoModelForMaskedLM", "FlaxAutoModelForSequenceClassification",
        "FlaxAutoModelForMultipleChoice", "FlaxAutoModelForTokenClassification", "FlaxAutoModelForQuestionAnswering",
        "FlaxAutoModelForCausalLM",
    ],
    ".pipelines": ["pipeline"],
    ".pipelines.base": ["Pipeline", "ChunkPipeline", "PipelineException"],
    ".pipelines.text_generation": ["TextGenerationPipeline", "ReturnType"],
    ".pipelines.text2text_generation": ["Text2TextGenerationPipeline", "SummarizationPipeline"],
    ".pipelines.feature_extraction": ["FeatureExtractionPipeline"],
    ".pipelines.token_classification": ["TokenClassificationPipeline", "AggregationStrategy"],
    ".pipelines.question_answering": ["QuestionAnsweringPipeline", "SquadExample", "QuestionAnsweringArgumentHandler"],
    ".pipelines.fill_mask": ["FillMaskPipeline"],
    ".pipelines.text_classification": ["TextClassificationPipeline"],
    ".pipelines.zero_shot_classification": ["ZeroShotClassificationPipeline"],
    ".pipelines.zero_shot_image_classification": ["ZeroShotImageClassificationPipeline"],
    ".generation.config": ["GenerationConfig"],
    ".generation.utils": ["GenerationMixin"],
    ".generation.streamers": ["BaseStreamer", "TextStreamer", "TextIteratorStreamer"],
    ".generation.stopping": [
        "StoppingCriteria", "StoppingCriteriaList", "MaxLengthCriteria", "MaxNewTokensCriteria", "MaxTimeCriteria",
        "StopStringCriteria",
    ],
    ".generation.processors": [
        "LogitsProcessor", "LogitsWarper", "LogitsProcessorList", "MinLengthLogitsProcessor",
        "MinNewTokensLengthLogitsProcessor", "RepetitionPenaltyLogitsProcessor", "EncoderRepetitionPenaltyLogitsProcessor",
        "NoRepeatNGramLogitsProcessor", "EncoderNoRepeatNGramLogitsProcessor", "SequenceBiasLogitsProcessor",
        "NoBadWordsLogitsProcessor", "PrefixConstrainedLogitsProcessor", "ForcedBOSTokenLogitsProcessor",
        "ForcedEOSTokenLogitsProcessor", "ForceTokensLogitsProcessor", "InfNanRemoveLogitsProcessor",
        "ExponentialDecayLengthPenalty", "LogitNormalization", "SuppressTokensLogitsProcessor",
        "SuppressTokensAtBeginLogitsProcessor",
    ],
    ".generation.warpers": [
        "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "TypicalLogitsWarper", "EpsilonLogitsWarper",
        "EtaLogitsWarper",
    ],
    ".generation.beam": ["BeamSearchScorer", "BeamHypotheses"],
    ".generation.outputs": [
        "GenerateDecoderOnlyOutput", "GenerateEncoderDecoderOutput", "GenerateBeamDecoderOnlyOutput",
        "GenerateBeamEncoderDecoderOutput", "GreedySearchDecoderOnlyOutput", "SampleDecoderOnlyOutput",
        "ContrastiveSearchDecoderOnlyOutput", "BeamSearchDecoderOnlyOutput", "BeamSampleDecoderOnlyOutput",
        "GreedySearchEncoderDecoderOutput", "SampleEncoderDecoderOutput", "ContrastiveSearchEncoderDecoderOutput",
        "BeamSearchEncoderDecoderOutput", "BeamSampleEncoderDecoderOutput",
    ],
}

_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'polyformer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
