# Two commands: `make demo` (set up, then run the main job on the embedded real model) and
# `make test` (set up, then run the tests). Both create .venv as needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODEL  := .cache/all-MiniLM-L6-v2
STUDENT := .cache/distilbert-all-MiniLM-L6-v2

.PHONY: demo test venv clean

venv: $(STAMP)

# torch first and pinned: the machine's index has the 2.13.0 CPU wheel; a looser pin pulls CUDA.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,flax,tf]"
	touch $(STAMP)

$(STUDENT)/config.json: | $(STAMP)
	$(BIN)/python scripts/fetch_minilm.py --dest $(MODEL)
	$(BIN)/polyformer convert bert-to-distilbert $(MODEL) $(STUDENT)

demo: $(STAMP) $(STUDENT)/config.json
	$(BIN)/polyformer demo --model $(STUDENT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .cache
