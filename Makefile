# genoml: `make demo` and `make test` are the whole set-up on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
GENOML := $(VENV)/bin/genoml
# a CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

## demo: the default (`--model auto`: k-mer, cnn-attn and cnn-shallow candidates, chosen on validation) on the
## planted-motif task, printed beside the candidates it beat; then predict with the chosen run
demo: install
	$(GENOML) finetune data/motif/train.csv --valid data/motif/valid.csv --test data/motif/test.csv \
		--out runs/demo --force --seed 0 --time-budget 3
	$(GENOML) predict --model runs/demo data/examples/motif_test.fa -o runs/demo/predictions.tsv
	head -5 runs/demo/predictions.tsv
	$(PY) scripts/demo_summary.py runs/demo
	@echo "report: runs/demo/report.md  metrics: runs/demo/metrics.json"

lint: install
	$(VENV)/bin/ruff check genoml tests scripts
	$(VENV)/bin/ruff format --check genoml tests scripts

test: install lint
	$(PY) -m pytest -q -x --timeout 600

## bench: the slow benchmark suite (reads ../shared/data; rewrites BENCHMARKS.md). Never part of CI.
bench: install
	$(PY) scripts/bench_suite.py --out runs/bench --write BENCHMARKS.md

clean:
	rm -rf runs .pytest_cache .ruff_cache
