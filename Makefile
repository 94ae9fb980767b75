# cbir-repro — two commands on a fresh machine (each sets itself up; a second run skips installs):
#   make reproduce [PROFILE=smoke|medium|paper] [NB=02] [JOBS=2] [THREADS=1]
#                                                         run the notebooks with papermill -> outputs/<profile>/
#                                                         (JOBS notebooks at a time, each max(1, cores/JOBS) threads)
#   make test                                             unit tests + nbval over notebooks/ (what CI runs)
# Also: make lab (JupyterLab, kernel registered), make lab-check (headless-Chromium check of it), make bench (benchmarks), make notebooks (refresh stored outputs).
PROFILE ?= smoke
NB ?=
JOBS ?= 1
THREADS ?=
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cbir-installed
PYTEST_ARGS ?=

.PHONY: setup reproduce test lab lab-check bench notebooks clean clean-cache phash-fixture

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

reproduce: $(STAMP)
	$(PY) -m cbir.run --profile $(PROFILE) $(if $(NB),--nb $(NB)) --jobs $(JOBS) $(if $(THREADS),--threads $(THREADS))

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg \
		-m "not browser" tests notebooks -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

notebooks: $(STAMP)
	$(PY) -m cbir.run --profile smoke --store $(if $(NB),--nb $(NB))

# First run warms the smoke cache (features, codes, weights) so a student's first cell runs in seconds.
lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cbir-repro)"
	@test -f outputs/smoke/run_summary.csv || $(PY) -m cbir.run --profile smoke || true
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Optional real-browser check (issue 9): JupyterLab on 127.0.0.1 with a token, notebook 05 run in headless
# Chromium, its explorer moved once; screenshot + timings in outputs/lab_check/. Skips without Chromium.
BROWSER_STAMP := $(VENV)/.cbir-browser-installed
$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,browser]"
	@touch $(BROWSER_STAMP)

lab-check: $(BROWSER_STAMP)
	$(PY) -m pytest tests/test_lab_browser.py -m browser -q -p no:cacheprovider -rs -s

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# pHash 0.9.6 ph_dct_imagehash reference hashes (needs g++ and cimg-dev: apt-get install -y cimg-dev; and the
# shared photos, or CBIR_DATA_DIR): compiles tests/fixtures/phash_ref/phash_dct_ref.cpp, rewrites the fixture
PHASH_REF := tests/fixtures/phash_ref
phash-fixture: $(STAMP)
	g++ -O2 -std=c++17 -fopenmp -o $(PHASH_REF)/phash_dct_ref $(PHASH_REF)/phash_dct_ref.cpp
	OMP_NUM_THREADS=1 $(PY) $(PHASH_REF)/make_fixture.py $(PHASH_REF)/phash_dct_ref

# keeps the published outputs/medium/ (committed); delete it by hand to start over
clean:
	rm -rf outputs/smoke outputs/paper outputs/cache

# only the artifact cache (features, codes, trained models); never the published outputs/medium/
clean-cache:
	rm -rf outputs/cache
