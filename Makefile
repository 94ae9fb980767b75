# cbir-repro — two commands on a fresh machine (each sets itself up; a second run skips installs):
#   make reproduce [PROFILE=smoke|medium|paper] [NB=02] [JOBS=2] [THREADS=1]
#                                                         run the notebooks with papermill -> outputs/<profile>/
#                                                         (JOBS notebooks at a time, each max(1, cores/JOBS) threads)
#   make test                                             unit tests + nbval over notebooks/ (what CI runs)
# Also: make lab (JupyterLab, kernel registered), make lab-check (headless-Chromium check of it), make bench (benchmarks), make notebooks (refresh stored outputs),
#       make book (the course site: notebooks, real-data results, report, glossary, API -> outputs/site/index.html).
PROFILE ?= smoke
NB ?=
JOBS ?= 1
THREADS ?=
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cbir-installed
PYTEST_ARGS ?=

.PHONY: setup reproduce test lab lab-check bench notebooks book clean clean-cache phash-fixture

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
# It also builds the course site (make book) and opens its index and notebook 00's page: equations typeset by
# the site's own MathJax, figures loaded with captions, nothing from another host (site_*.png, site_check.json).
BROWSER_STAMP := $(VENV)/.cbir-browser-installed
$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,browser]"
	@touch $(BROWSER_STAMP)

lab-check: $(BROWSER_STAMP)
	$(PY) -m pytest tests/test_lab_browser.py -m browser -q -p no:cacheprovider -rs -s

# Static course site (issue 20): Sphinx + MyST-NB over the committed notebooks (never executed), their published
# outputs/medium/ results, the report, the glossary and the API of lib/cbir; -W -n, internal links checked.
# Sources are assembled in outputs/site-src/ (incremental: a second run rebuilds only what changed).
book: $(STAMP)
	$(PY) -m cbir.book $(BOOK_ARGS)

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
	rm -rf outputs/smoke outputs/paper outputs/cache outputs/site outputs/site-src

# only the artifact cache (features, codes, trained models); never the published outputs/medium/
clean-cache:
	rm -rf outputs/cache
