# The two commands of README.md: `make demo` and `make test`.
# Both set up what they need: the Debian packages and the Slurm test cluster
# (slurm/up, as root), and a virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test cluster cluster-down venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

cluster:
	slurm/up

cluster-down:
	slurm/down

demo: venv cluster
	sinfo
	$(VENV)/bin/paddle-hpc info

test: venv cluster
	$(VENV)/bin/pytest
