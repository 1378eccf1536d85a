# The whole set-up is two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_SENTENCES := "the old king eats a red apple .\nmy sisters do not see the small cats .\nthe queen is happy ."

.PHONY: venv toy demo test data clean

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
	printf $(DEMO_SENTENCES) | $(BIN)/nmt translate runs/toy --beam 5 | paste <(printf $(DEMO_SENTENCES)) - | sed 's/\t/  =>  /'

test: venv toy
	$(BIN)/python -m pytest -q

data: venv
	$(BIN)/python scripts/get_data.py multi30k --from ../shared/data/multi30k
	$(BIN)/python scripts/get_data.py tatoeba --from ../shared/data/tatoeba-eng-fra

clean:
	rm -rf $(VENV) runs .pytest_cache
