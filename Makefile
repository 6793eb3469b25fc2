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

.PHONY: all setup venv sample run test lint report teaching lock clean help

help:
	@echo "make all       set up, build the synthetic sample, run every notebook (figures, tables)"
	@echo "make test      set up, then unit tests + nbval over the stored notebooks"
	@echo "make report    static HTML site from the executed notebooks (_build/html)"
	@echo "make teaching  teaching edition under teaching/"
	@echo "make lock      re-resolve requirements.lock and environment.yml (needs network)"

all: setup sample run

setup venv: $(STAMP)

$(STAMP): requirements.lock requirements-cff.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -m pip download --quiet --no-deps --require-hashes -r requirements-cff.lock -d $(VENV)/cff 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))" >/dev/null
	@touch $(STAMP)
	@echo "environment ready: $(VENV) with kernel '$(KERNEL)'"

sample: $(SAMPLE)

$(SAMPLE): $(STAMP) src/civitai_study/synthetic.py $(wildcard data/calibration/*.csv)
	$(BIN)/civitai-study sample --out data/sample

run: $(STAMP) $(SAMPLE)
	$(BIN)/civitai-study run --data data/sample

# Unit tests, then nbval re-runs the stored notebooks and compares their marked outputs; the
# re-run writes its tables and figures to a scratch folder, never over the committed ones.
test: $(STAMP) $(SAMPLE)
	scratch=$$(mktemp -d); status=0; \
	CIVITAI_STUDY_OUT_DIR=$$scratch $(BIN)/python -m pytest tests notebooks \
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

report: $(STAMP)
	$(BIN)/civitai-study report

teaching: $(STAMP)
	$(BIN)/civitai-study teaching
