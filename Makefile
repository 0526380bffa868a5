# The two commands of README.md: `make demo` and `make test`.
# Both set up what they need: the Debian packages and the Slurm test cluster
# (slurm/up, as root), and a virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench cluster cluster-down image venv browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	# the oracle of tests/test_space.py: Hydra's Optuna sweeper pins optuna<3 for
	# distribution classes Optuna still has, so it goes in without its dependencies
	$(VENV)/bin/pip install --quiet --no-deps 'hydra-optuna-sweeper==1.3.0'
	touch $@

cluster:
	slurm/up

cluster-down:
	slurm/down

# the Paddle image of the container tests (Charliecloud), cached in the cluster's
# folder, and the same image in Podman's storage
image: venv
	slurm/podman-image $(VENV)/bin/python >/dev/null

# The bundled example sweep (conf/config.yaml): on the test cluster when it comes up,
# otherwise here without Slurm. Waits, then shows the final status table.
demo: venv
	@if slurm/up; then executor=auto; else \
		echo "[demo] no test cluster: running the sweep locally"; executor=local; fi; \
	rm -rf sweeps/digits; \
	$(VENV)/bin/python -m paddle_hpc.sweep --follow cluster.executor=$$executor
	$(VENV)/bin/python -m paddle_hpc.collect sweeps/digits --sort final.acc
	$(VENV)/bin/python -m paddle_hpc.report sweeps/digits

test: venv cluster image browser
	$(VENV)/bin/pytest

# Debian's Chromium: the report's tests open it in a real browser (Playwright drives it)
browser:
	@command -v chromium >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || { \
		apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }; }

# benchmarks/: each measures against its baseline in the same run and prints the ratio.
bench: venv cluster browser
	$(VENV)/bin/pip install --quiet -e '.[bench]'
	for bench in sweep_submit submit_history watch_calls file_count scale packing overhead collect_tables metrics_engine lifecycle exporter report_page search_async; do \
		$(VENV)/bin/python benchmarks/$$bench.py || exit 1; done
