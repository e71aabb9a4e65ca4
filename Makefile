# Two commands: `make demo` (set up, then run the main job on the embedded real model) and
# `make test` (set up, then run the tests). Both create .venv as needed.
# `make fixtures` regenerates every file under tests/fixtures/ with the reference, transformers 4.37.2
# (REFVENV, built by scripts/make_reference_venv.sh), and transformers 5.23.0 (T5VENV) for the 5.x parts.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODEL  := .cache/all-MiniLM-L6-v2
STUDENT := .cache/distilbert-all-MiniLM-L6-v2
DISTILLED := .cache/distilled-MiniLM-L3

.PHONY: demo test venv clean fixtures distill-demo

venv: $(STAMP)

# torch first and pinned: the machine's index has the 2.13.0 CPU wheel; a looser pin pulls CUDA.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,flax,tf,accelerate,onnx]"
	touch $(STAMP)

$(MODEL)/config.json:
	$(PYTHON) scripts/fetch_minilm.py --dest $(MODEL)

$(STUDENT)/config.json: $(MODEL)/config.json | $(STAMP)
	$(BIN)/polyformer convert bert-to-distilbert $(MODEL) $(STUDENT)

demo: $(STAMP) $(STUDENT)/config.json
	$(BIN)/polyformer demo --model $(STUDENT)

# Not one of the two commands: distil all-MiniLM-L6-v2 into a 3-layer student on the standard library's
# docstrings (a few minutes on 2 cores) and print the README's distillation table row.
distill-demo: $(STAMP) $(MODEL)/config.json
	$(BIN)/python scripts/distill_demo.py --teacher $(MODEL) --out $(DISTILLED)

# The numerical tests run twice: as the machine is, then with the CPU kernels held to AVX2 (the variables
# come from tests/helpers/machine.py; test_package_cpu_kernels checks that torch honours them), so that a
# result which holds only with AVX-512 or AMX kernels fails on the developer's machine, not on the user's.
NUMERICAL_TESTS := tests/test_parity_*.py tests/test_generation_*.py tests/test_pipelines_*.py tests/test_tf_*.py \
                   tests/test_flax_*.py tests/test_onnx_export.py tests/test_convert_llama_meta.py \
                   tests/test_modeling_quantization.py tests/test_package_cpu_kernels.py

test: $(STAMP)
	$(BIN)/python -m pytest -q
	env $$($(BIN)/python tests/helpers/machine.py) $(BIN)/python -m pytest -q $(NUMERICAL_TESTS)

# ---- fixtures -----------------------------------------------------------------------------------
REFVENV  ?= .refvenv
REFPY    := $(REFVENV)/bin/python
# transformers 5.x, for configs/transformers5.json and the 5.x-saved tokenizer folder in
# tokenizers/distilbert/cases.json; configs and tokenizers need no torch, so none is installed.
T5VENV   ?= .t5venv
T5PY     := $(T5VENV)/bin/python
T5STAMP  := $(T5VENV)/.installed
T5PIN    := transformers==5.23.0

# make_config_fixtures runs first with $(T5PY) (configs/transformers5.json); then all of these, in this
# order, with $(REFPY) (make_tokenizer_fixtures also calls $(T5PY)); the order is the data flow:
# - make_tokenizer_fixtures writes tokenizers/distilbert/ (cases.json), which
#   make_canine_tokenizer_fixtures reads as its sentence pool;
# - make_decoder_tokenizer_fixtures writes tokenizers/{codegen,llama,code_llama}/ (committed vocabularies
#   kept: no --retrain) and make_clip_tokenizer_fixtures tokenizers/clip/ (kept vocabulary); then
#   make_vision_preprocessing_fixtures (images kept: no --redraw) reads tokenizers/llama/ and
#   tokenizers/clip/, and make_auto_processor_fixtures both; make_gpt2_tokenizer_fixtures writes
#   tokenizers/gpt2/ (its vocabulary a copy of tokenizers/codegen/'s, taken when missing);
# - make_tf_fixtures replays the PyTorch cases of distilbert/, gptj/ (make_decoder_fixtures) and
#   groupvit/; make_flax_fixtures those of distilbert/ and gptj/: both run after those three.
# - make_bf16_fixtures runs the distilbert/ and decoder checkpoints again in bfloat16: after those.
# - make_pipeline_classification_fixtures reads tokenizers/{distilbert,clip,codegen,mvp}/ and vision/images/.
# - make_llama_meta_fixtures copies tokenizers/{llama,code_llama}/tokenizer.model.
# The others read no fixture; make_minilm_fixtures needs the real model folder $(MODEL).
FIXTURE_SCRIPTS := \
	make_config_fixtures.py \
	make_tokenizer_fixtures.py \
	make_decoder_tokenizer_fixtures.py \
	make_gpt2_tokenizer_fixtures.py \
	make_mvp_tokenizer_fixtures.py \
	make_canine_tokenizer_fixtures.py \
	make_clip_tokenizer_fixtures.py \
	make_vision_preprocessing_fixtures.py \
	make_auto_processor_fixtures.py \
	make_distilbert_fixtures.py \
	make_decoder_fixtures.py \
	make_bf16_fixtures.py \
	make_generation_fixtures.py \
	make_mvp_fixtures.py \
	make_canine_fixtures.py \
	make_groupvit_fixtures.py \
	make_idefics_fixtures.py \
	make_minilm_fixtures.py \
	make_tf_fixtures.py \
	make_flax_fixtures.py \
	make_pipeline_generation_fixtures.py \
	make_pipeline_span_fixtures.py \
	make_pipeline_classification_fixtures.py \
	make_prune_fixtures.py \
	make_llama_meta_fixtures.py
FIXARGS.make_tokenizer_fixtures.py := --transformers5-python $(T5PY)
FIXARGS.make_minilm_fixtures.py    := --model $(MODEL)

# $(call run_reference,SCRIPT): one recipe line running scripts/fixtures/SCRIPT in the reference venv.
define run_reference
$(REFPY) scripts/fixtures/$(1) $(FIXARGS.$(1))

endef

$(T5STAMP):
	$(PYTHON) -m venv $(T5VENV)
	$(T5PY) -m pip install --quiet $(T5PIN)
	touch $@

# str hashes are salted per process and the reference prints sets in some recorded messages
# (vision/cases.json: get_size_dict's VALID_SIZE_DICT_KEYS), so the seed is pinned: 5 gives the committed order.
fixtures: export PYTHONHASHSEED := 5
fixtures: $(T5STAMP) $(MODEL)/config.json
	@missing='$(filter-out $(addprefix scripts/fixtures/,$(FIXTURE_SCRIPTS)),$(wildcard scripts/fixtures/make_*.py))'; \
	if [ -n "$$missing" ]; then echo "fixture scripts missing from FIXTURE_SCRIPTS: $$missing" >&2; exit 1; fi
	REFVENV=$(REFVENV) PYTHON=$(PYTHON) scripts/make_reference_venv.sh
	$(T5PY) scripts/fixtures/make_config_fixtures.py
	$(foreach script,$(FIXTURE_SCRIPTS),$(call run_reference,$(script)))

clean:
	rm -rf $(VENV) .cache
