# bg-gpt2: the Bulgarian web -> a Bulgarian GPT-2. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CONFIG ?= pipelines.toml
SIZE ?=
J ?=
RUN ?=
CKPT ?=
TEXT ?=
PROMPT ?=
SITE ?=
SINCE ?=
UNTIL ?=
LIMIT ?=
LINES ?=
ARGS ?=

VENV := .venv
PY := $(VENV)/bin/python
PT_VENV := .venv-pt
STAMP := $(VENV)/.installed-$(shell cat requirements/bootstrap.txt requirements/main.lock | sha1sum | cut -c1-12)
PT_STAMP := $(PT_VENV)/.installed-$(shell cat requirements/pt.lock 2>/dev/null | sha1sum | cut -c1-12)
DEBS := chromium chromium-driver redis-server
export PYTHONUNBUFFERED := 1
export BG_CONFIG := $(abspath $(CONFIG))

SIZE_ARG := $(if $(SIZE),--set train.size=$(SIZE))
# LINES counts only from the command line: terminals export LINES (their height) to the environment
HALVES := $(if $(filter command line,$(origin LINES)),$(LINES))
ifneq ($(filter-out 0 1,$(HALVES)),)
$(error LINES=$(HALVES): LINES=1 also scores each line of TEXT (--lines); LINES=0 or none does not)
endif

.PHONY: help setup system crawl corpus tokenizer train eval generate export-pt demo all \
        test lint bench bench-crawl bench-corpus bench-tokenizer bench-train bench-memory \
        bench-scale bench-quality bench-gpu clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

setup: system $(STAMP)  ## make .venv with the pinned packages (and Debian packages when root)

$(STAMP): requirements/main.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/bootstrap.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/main.lock
	@rm -f $(VENV)/.installed-*; touch $@

$(PT_STAMP): requirements/pt.lock
	@test -x $(PT_VENV)/bin/python || python3 -m venv $(PT_VENV)
	$(PT_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements/bootstrap.txt
	$(PT_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements/pt.lock
	@rm -f $(PT_VENV)/.installed-*; touch $@

system:  ## Debian packages: chromium, chromium-driver, redis-server (apt when root)
	@missing=""; \
	for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install -y$$missing"; \
	  fi; \
	fi

LIMIT_ARG := $(if $(LIMIT),-a limit=$(LIMIT))
NEWS_ARGS := $(if $(SITE),-a site=$(SITE)) $(if $(SINCE),-a since=$(SINCE)) \
             $(if $(UNTIL),-a until=$(UNTIL)) $(LIMIT_ARG)

crawl: setup  ## crawl wiki titles and news (SITE=, archives: SINCE= UNTIL= LIMIT=) to data/raw/
	$(VENV)/bin/scrapy crawl news --check $(NEWS_ARGS) $(ARGS)
	$(VENV)/bin/scrapy crawl bgwiki $(LIMIT_ARG) $(ARGS)
	$(VENV)/bin/scrapy crawl news $(NEWS_ARGS) $(ARGS)

.PHONY: check-sources
check-sources: setup  ## a few polite requests per source: which ones work (SITE=one); run before a long crawl
	$(PY) -m crawler.check --config $(CONFIG) $(if $(SITE),--site $(SITE)) $(ARGS)

.PHONY: wikidump
wikidump: setup  ## all of bg.wikipedia from the newest Enterprise HTML dump into data/raw/bgwiki/
	$(PY) -m crawler.wikidump --config $(CONFIG) $(if $(LIMIT),--limit $(LIMIT)) $(ARGS)

corpus: setup  ## clean, filter, dedup, split data/raw/ into data/corpus/
	$(PY) -m corpus.build --config $(CONFIG) $(if $(J),-j $(J)) $(ARGS)

tokenizer: setup  ## train the ByteLevel BPE tokenizer and write token shards
	$(PY) -m corpus.tokenizer --config $(CONFIG) $(ARGS)

train: setup  ## train GPT-2 (SIZE=tiny|small|medium|large|xl); re-run to resume
	$(PY) -m tftrain.train --config $(CONFIG) $(SIZE_ARG) $(if $(RUN),--run $(RUN)) $(ARGS)

eval: setup  ## loss, perplexity, bits/byte on the test split or TEXT=file.txt (LINES=1: also per-line halves; CKPT=)
	$(PY) -m tftrain.evaluate --config $(CONFIG) $(SIZE_ARG) $(if $(CKPT),--ckpt $(CKPT)) $(if $(TEXT),--text "$(TEXT)") $(if $(filter 1,$(HALVES)),--lines) $(ARGS)

generate: setup  ## sample text: make generate PROMPT="България е"
	$(PY) -m tftrain.generate --config $(CONFIG) $(SIZE_ARG) $(if $(CKPT),--ckpt $(CKPT)) $(if $(PROMPT),--prompt "$(PROMPT)") $(ARGS)

export-pt: setup  ## write a PyTorch-format copy of a run: make export-pt RUN=tiny
	$(PY) -m tftrain.export_pt --config $(CONFIG) $(SIZE_ARG) $(if $(RUN),--run $(RUN)) $(ARGS)

demo: setup  ## the whole path offline on the bundled demo site (tiny model, CPU)
	$(PY) -m demo.run $(ARGS)

all: crawl corpus tokenizer train eval generate  ## the whole path on the configured real sources

test: setup $(PT_STAMP)  ## the test suite
	$(VENV)/bin/pytest $(ARGS)

lint: setup  ## ruff
	$(VENV)/bin/ruff check .

bench: bench-crawl bench-corpus bench-tokenizer bench-train bench-memory bench-scale bench-quality  ## every benchmark -> bench/RESULTS.md
	$(PY) -m bench.report

bench-crawl: setup
	$(PY) -m bench.crawl

bench-corpus: setup
	$(PY) -m bench.corpus
	$(PY) -m bench.extraction

bench-tokenizer: setup
	$(PY) -m bench.tokenizer

bench-train: setup $(PT_STAMP)
	$(PY) -m bench.train

bench-memory: setup  ## peak training memory beside the printed estimate
	$(PY) -m bench.memory

bench-gpu: setup  ## NVIDIA GPU check, under 10 min: tokens/s, MFU, peak memory (ARGS=--smoke: CPU, tiny)
	$(PY) -m bench.gpu $(ARGS)

bench-scale: setup  ## corpus, tokens and crawl resume at 10k/40k/160k docs (ARGS=--sizes ...; ARGS=--wiki-real: Wikipedia at real page sizes)
	$(PY) -m bench.scale $(ARGS)

bench-quality: setup $(PT_STAMP)  ## validation bits/byte per step: our trainer against PyTorch
	$(PY) -m bench.quality $(ARGS)

clean:  ## remove data/ and artifacts/ of the default config (asks nothing: be sure)
	rm -rf data artifacts
