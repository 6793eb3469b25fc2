# The two commands a reader needs: `make all` (set-up, sample, notebooks) and `make test`.
# Set-up is automatic: the virtual environment is (re)built from requirements.lock whenever the
# lock or pyproject.toml is newer than it.

SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := data/sample/manifest.json
KERNEL := civitai-study
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# Real-data results: the real 2023 /api/v1/models crawl (17,982 models, 187,256 preview images),
# imported once into a git-ignored snapshot, run into results/real-2023/ (aggregates, redacted),
# then audited for slurs, names of real people, usernames and verbatim prompts.
REAL_CRAWL_NAME = dfanr_v1_models_2023-07-04.jsonl.gz
REAL_CRAWL    ?= $(firstword $(wildcard ../shared/civitai-samples/models/$(REAL_CRAWL_NAME) \
                 data/.downloads/real-2023/$(REAL_CRAWL_NAME)) \
                 ../shared/civitai-samples/models/$(REAL_CRAWL_NAME))
REAL_SNAPSHOT ?= data/real-2023
REAL_OUT      ?= results/real-2023

.PHONY: all setup venv sample run test test-run lint report teaching simulation lock clean help real

help:
	@echo "make all       set up, build the synthetic sample, run every notebook (figures, tables), teaching edition"
	@echo "make test      set up, then unit tests + nbval over the stored notebooks"
	@echo "make report    static HTML site from the executed notebooks (_build/html)"
	@echo "make teaching  teaching edition under teaching/"
	@echo "make simulation  notebook 03's simulation study -> data/derived/simulation_coverage.csv"
	@echo "make real      the pipeline on the real 2023 crawl into results/real-2023/ (redacted)"
	@echo "make lock      re-resolve requirements.lock and environment.yml (needs network)"

all: setup sample run teaching

setup venv: $(STAMP)

$(STAMP): requirements.lock requirements-cff.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -m pip download --quiet --no-deps --require-hashes -r requirements-cff.lock -d $(VENV)/cff 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))" >/dev/null
	$(BIN)/python -m civitai_study.coding.kernels
	@touch $(STAMP)
	@echo "environment ready: $(VENV) with kernel '$(KERNEL)'"

sample: $(SAMPLE)

$(SAMPLE): $(STAMP) src/civitai_study/synthetic.py $(wildcard data/calibration/*.csv)
	$(BIN)/civitai-study sample --out data/sample

run: $(STAMP) $(SAMPLE)
	$(BIN)/civitai-study run --data data/sample

# Unit tests, then nbval re-runs the stored notebooks and compares their marked outputs; the
# re-run writes its tables and figures to a scratch folder, never over the committed ones.
# nbval also re-runs results/real-2023/notebooks when the real snapshot is here (else skipped).
REAL_NBVAL = $(if $(wildcard $(REAL_SNAPSHOT)/manifest.json),$(wildcard $(REAL_OUT)/notebooks),)

# With the real crawl beside the repository (../shared), its snapshot is imported first (seconds)
# so that nbval re-runs the committed real-data notebooks too.
test: $(STAMP) $(SAMPLE)
	@if [ ! -f $(REAL_SNAPSHOT)/manifest.json ] && [ -f $(REAL_CRAWL) ]; then \
	  $(BIN)/civitai-study import models-jsonl $(REAL_CRAWL) --out $(REAL_SNAPSHOT) >/dev/null; fi
	@$(MAKE) --no-print-directory test-run

test-run:
	@test -n "$(REAL_NBVAL)" || echo "nbval: results/real-2023 skipped (no real snapshot in $(REAL_SNAPSHOT); see make real)"
	scratch=$$(mktemp -d); status=0; \
	CIVITAI_STUDY_OUT_DIR=$$scratch $(BIN)/python -m pytest tests notebooks $(REAL_NBVAL) \
	  --nbval-lax --nbval-kernel-name $(KERNEL) -q -p no:cacheprovider || status=$$?; \
	rm -rf $$scratch; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

environment.yml: requirements.lock
	$(BIN)/python -m civitai_study.lockfile

lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml build-requirements.in --extra cluster --python-version 3.11 \
	  --generate-hashes --no-header --annotation-style line -o requirements.lock
	$(MAKE) environment.yml

clean:
	rm -rf data/sample _build .pytest_cache

real: $(STAMP)
	@if [ ! -f $(REAL_SNAPSHOT)/manifest.json ]; then \
	  if [ -f $(REAL_CRAWL) ]; then \
	    $(BIN)/civitai-study import models-jsonl $(REAL_CRAWL) --out $(REAL_SNAPSHOT); \
	  else \
	    echo "make real: no snapshot in $(REAL_SNAPSHOT) and no crawl at $(REAL_CRAWL);" \
	         "fetch it with: civitai-study acquire real-2023 --out $(REAL_SNAPSHOT)"; exit 1; \
	  fi; \
	fi
	$(BIN)/civitai-study run --data $(REAL_SNAPSHOT) --out $(REAL_OUT)
	$(BIN)/python -m civitai_study.audit --crawl $(REAL_CRAWL) $(REAL_OUT)

report: $(STAMP)
	$(BIN)/civitai-study report

teaching: $(STAMP)
	$(BIN)/civitai-study teaching

# Minutes, not seconds: kept out of `make all`; its table is committed and read by notebook 03.
simulation: $(STAMP)
	$(BIN)/python benchmarks/simulation.py --seeds 200
