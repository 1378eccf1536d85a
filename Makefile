# The whole set-up is two commands: `make demo` and `make test`.
# `make report` re-measures the README's demo figures into docs/report/demo.json (scripts/report.py;
# REPORT_ARGS="--set train.max_steps=50" for a quick check, which the JSON then marks as not the demo).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# the sample sentences of make demo and make report, one a line
DEMO_SENTENCES := configs/toy_demo_sentences.txt

.PHONY: venv toy demo report test coverage notebook docs data clean

venv: $(VENV)/.installed

# torch is pinned to the CPU build (constraints.txt): an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

# the toy corpus is generated (deterministic, about a second), not committed
toy: data/toy/train.en
data/toy/train.en: scripts/make_toy_data.py | venv
	$(BIN)/python scripts/make_toy_data.py --out data/toy

demo: venv toy
	$(BIN)/nmt train configs/toy.yaml --overwrite
	$(BIN)/nmt evaluate runs/toy --src data/toy/test.en --ref data/toy/test.fr --beam 5
	$(BIN)/nmt translate runs/toy --beam 5 --input $(DEMO_SENTENCES) | paste $(DEMO_SENTENCES) - | sed 's/\t/  =>  /'

# the demo's figures, measured on this machine, into docs/report/demo.json (a full demo training:
# 12 epochs of configs/toy.yaml; run it on a quiet machine, nothing else on the cores)
report: venv toy
	$(BIN)/python scripts/report.py $(REPORT_ARGS)

test: venv toy
	$(BIN)/python -m pytest -q

# make test under coverage.py (pyproject.toml's [tool.coverage.run]): the line coverage of nmt/,
# into .coverage; several times slower than make test
# COVERAGE_FILE is absolute so that processes started in other folders (the tests' tmp_path) add to it
coverage: export COVERAGE_FILE = $(CURDIR)/.coverage
coverage: venv toy
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest -q
	$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report --precision 2 | tail -1

# the embedding lab's notebook (committed without outputs), executed from top to bottom into
# docs/notebooks/ (not committed) for the manual: it trains a short toy run (a few minutes on 2 cores)
# and draws the lab's figures inline. A cell that raises fails it (scripts/run_notebook.py).
NOTEBOOK := notebooks/embedding_lab.ipynb
NOTEBOOK_PAGE := docs/notebooks/embedding_lab.ipynb
notebook: venv toy
	@$(BIN)/python -c "import nbclient, ipykernel, gensim, matplotlib" 2>/dev/null || { echo "make notebook needs the notebook extra: $(BIN)/pip install -c constraints.txt -e '.[notebook]'" >&2; exit 2; }
	$(BIN)/python scripts/run_notebook.py $(NOTEBOOK) $(NOTEBOOK_PAGE)

# the manual: mkdocs.yml and docs/ into site/; --strict turns a broken link or reference into an error.
# The reference pages are generated from the code first (scripts/make_reference.py). The notebook's
# page is make notebook's executed copy; without one (or with one older than the notebook) the page
# shows the notebook as committed, without outputs.
docs: venv
	@test -x $(BIN)/mkdocs && $(BIN)/python -c "import mkdocs_jupyter" 2>/dev/null || { echo "make docs needs the docs extra: $(BIN)/pip install -c constraints.txt -e '.[docs]'" >&2; exit 2; }
	@if [ ! $(NOTEBOOK_PAGE) -nt $(NOTEBOOK) ]; then mkdir -p $(dir $(NOTEBOOK_PAGE)) && cp $(NOTEBOOK) $(NOTEBOOK_PAGE) && \
	  echo "make docs: the notebook's page shows it without outputs (make notebook executes it, a few minutes)" >&2; fi
	$(BIN)/python scripts/make_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

data: venv
	$(BIN)/python scripts/get_data.py multi30k --from ../shared/data/multi30k
	$(BIN)/python scripts/get_data.py tatoeba --from ../shared/data/tatoeba-eng-fra
	$(BIN)/python scripts/get_data.py tatoeba --tutorial-subset --from ../shared/data/tatoeba-eng-fra

clean:
	rm -rf $(VENV) runs .pytest_cache site $(dir $(NOTEBOOK_PAGE))
