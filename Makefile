# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs genvision, trains models on the embedded MNIST digits,
#               evaluates them (NLL + sample metrics) and writes their reports and
#               runs/demo/board.html, a comparison page of every model it trained
#   make test   creates .venv, installs genvision and runs the whole test suite
#   make mutants  mutation testing of the maths core (benchmarks/mutants.py, ~10 min):
#               prints JSON, exits 1 if a mutant survives that is not listed as equivalent
VENV ?= .venv
PY := $(VENV)/bin/python
GV := $(VENV)/bin/genvision
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint mutants clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The demo run directory is scratch: each `make demo` replaces runs/demo.
demo: $(STAMP)
	rm -rf runs/demo
	$(GV) train vae --data mnist5k --minutes 2 --eval-every 500 --out runs/demo/vae
	$(GV) train pixelcnn --data mnist5k --minutes 2 --eval-every 500 --out runs/demo/pixelcnn
	$(GV) evaluate runs/demo/vae --split test --k 100
	$(GV) evaluate runs/demo/pixelcnn --split test
	$(GV) report runs/demo/vae
	$(GV) report runs/demo/pixelcnn
	$(GV) compare runs/demo/vae runs/demo/pixelcnn -o runs/demo/board.html

test: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider tests

mutants: $(STAMP)
	$(PY) benchmarks/mutants.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs
