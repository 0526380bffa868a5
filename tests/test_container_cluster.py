"""Runs inside a Paddle image on the test cluster: the bundled example in the image
slurm/image builds (Charliecloud), and a node refusing an image that changed after
submission."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paddle_hpc.core import runstate
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import load
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.container import ImageError
from paddle_hpc.node.guest import enter_image
from paddle_hpc.node.image_digest import content_digest, identify
from tests.test_sweep_cluster import CHECK_TOKEN, sweep, write_conf

REPO = Path(__file__).resolve().parent.parent
IN_IMAGE = "/opt/paddle/bin/python3"  # the image's Python: no such file on the host
ONE_POINT = "sweep.grid={optim.lr:[0.03]}"


def slurm_script(name: str) -> str:
    """What slurm/NAME prints last: the image it built or imported (once; `make test`
    runs both scripts first)."""
    done = subprocess.run(
        [str(REPO / "slurm" / name), sys.executable], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.fixture(scope="module")
def paddle_image() -> Path:
    """The test image folder (slurm/image)."""
    return Path(slurm_script("image"))


@pytest.mark.slurm
def test_example_sweep_runs_inside_the_image(tmp_path: Path, paddle_image: Path) -> None:
    assert not Path(IN_IMAGE).exists()
    image = f"cluster.container.image={paddle_image}"
    dry = sweep(tmp_path, "--dry-run", image, ONE_POINT)
    assert dry.returncode == 0, dry.stderr
    assert f"node 1: ch-run --set-env -c {tmp_path} {paddle_image} -- python3 -m" in dry.stdout

    result = sweep(tmp_path, "--wait", image, ONE_POINT, "data.batch_size=128", "train.epochs=2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "COMPLETED 1" in result.stdout
    sweep_dir = tmp_path / "sweeps" / "digits"
    manifest = load(sweep_dir)
    submitted = manifest.arrays[0].image
    assert submitted is not None and submitted["image"] == str(paddle_image)
    assert submitted["digest"] == content_digest(paddle_image)
    run_dir = sweep_dir / "runs" / manifest.runs[0].run_id
    for node in (0, 1):
        logs = run_dir / "logs" / f"node{node}"
        inside = json.loads((logs / "environment.json").read_text())["container"]
        assert inside["runtime"] == "charliecloud" and inside["python"] == IN_IMAGE
        assert inside["digest"] == submitted["digest"] and inside["cuda"] is None
        for local in (0, 1):
            rank = node * 2 + local
            line = f"rank {rank} of world size 4: {IN_IMAGE}, Paddle {inside['paddle']}"
            assert line in (logs / f"workerlog.{local}").read_text()
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
    assert steps == [0, 1]


@pytest.fixture(scope="module")
def podman_image() -> str:
    """The same image in Podman's storage (slurm/podman-image)."""
    return slurm_script("podman-image")


# What this machine needs of Podman, as a site would put it in containers.conf: runc,
# since crun refuses its hybrid cgroups; and limits below the hard ones, since Podman
# raises its containers' to 1048576 by default, which needs CAP_SYS_RESOURCE.
PODMAN_HERE = '["--runtime=runc","--ulimit=nofile=16384:16384","--ulimit=nproc=8192:8192"]'


@pytest.mark.slurm
def test_example_sweep_runs_inside_a_podman_image(tmp_path: Path, podman_image: str) -> None:
    spec = [
        f"cluster.container.image={podman_image}",
        f"cluster.container.python={IN_IMAGE}",  # an imported image keeps no PATH
        f"cluster.container.flags={PODMAN_HERE}",
    ]
    dry = sweep(tmp_path, "--dry-run", *spec, ONE_POINT)
    assert dry.returncode == 0, dry.stderr
    assert "node 1: podman run --rm --init --name 'paddle-hpc-<run>-n<node>' --network=host" in (
        dry.stdout
    )
    assert "--runtime=runc --ulimit=nofile=16384:16384 --ulimit=nproc=8192:8192 " in dry.stdout

    result = sweep(tmp_path, "--wait", *spec, ONE_POINT, "data.batch_size=128", "train.epochs=2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "COMPLETED 1" in result.stdout
    sweep_dir = tmp_path / "sweeps" / "digits"
    manifest = load(sweep_dir)
    image_id = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", podman_image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    submitted = manifest.arrays[0].image
    assert submitted is not None and submitted["digest"] == f"podman:{image_id}"
    run_dir = sweep_dir / "runs" / manifest.runs[0].run_id
    for node in (0, 1):
        logs = run_dir / "logs" / f"node{node}"
        inside = json.loads((logs / "environment.json").read_text())["container"]
        assert inside["runtime"] == "podman" and inside["python"] == IN_IMAGE
        assert inside["digest"] == submitted["digest"]
        for local in (0, 1):
            rank = node * 2 + local
            line = f"rank {rank} of world size 4: {IN_IMAGE}, Paddle {inside['paddle']}"
            assert line in (logs / f"workerlog.{local}").read_text()
    left = subprocess.run(
        ["podman", "ps", "--all", "--quiet", "--filter", "name=paddle-hpc-"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout == ""  # every node's container was removed after its launcher


@pytest.mark.slurm
def test_secrets_reach_the_processes_inside_and_no_file_holds_them(
    tmp_path: Path, paddle_image: Path
) -> None:
    token = "tok-" + os.urandom(8).hex()
    (tmp_path / "check.py").write_text(CHECK_TOKEN + "import sys; print(sys.executable)\n")
    digest = hashlib.sha256(token.encode()).hexdigest()
    config = {
        "program": {"script": "check.py", "args": [digest]},
        "launch": {"env": {"API_KEY": "${oc.env:MY_TOKEN}"}},
        "resources": {"nodes": 2},
        "cluster": {"container": {"image": str(paddle_image)}},
        "sweep": {"name": "secret"},
    }
    write_conf(tmp_path, json.dumps(config))
    env = {**os.environ, "MY_TOKEN": token}
    secret = "+launch.env.HF_TOKEN=${oc.env:MY_TOKEN}"
    result = sweep(tmp_path, "--wait", secret, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = tmp_path / "sweeps" / "secret"
    logs = sorted(sweep_dir.rglob("workerlog.0"))
    assert len(logs) == 2
    for log in logs:
        assert "has its secrets" in log.read_text() and IN_IMAGE in log.read_text()
    holding = [p for p in sweep_dir.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert holding == []
    assert not list(Path("/dev/shm").glob("paddle-hpc-*/secrets.json"))


@pytest.mark.slurm
def test_a_changed_image_fails_the_run_naming_both_digests(tmp_path: Path) -> None:
    image = tmp_path / "image"
    (image / "etc").mkdir(parents=True)
    (image / "etc" / "hosts").write_text("")
    submitted = identify(str(image)).digest
    result = sweep(
        tmp_path,
        f"cluster.container.image={image}",
        ONE_POINT,
        "data.batch_size=128",
        "+resources.sbatch.hold=true",  # held until the image has changed
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = tmp_path / "sweeps" / "digits"
    manifest = load(sweep_dir)
    assert manifest.arrays[0].image is not None
    assert manifest.arrays[0].image["digest"] == submitted
    (image / "etc" / "hosts").write_text("10.0.0.9 other\n")
    now = identify(str(image)).digest
    job = str(manifest.arrays[0].job_id)
    subprocess.run(["scontrol", "release", job], check=True, capture_output=True)

    state_file = sweep_dir / "runs" / manifest.runs[0].run_id / "state.json"
    deadline = time.time() + 180
    while (state := runstate.read(state_file)) is None and time.time() < deadline:
        time.sleep(1)
    assert state is not None, "the run never started"
    assert state.state == "FAILED" and not state.retrying
    assert state.reason is not None
    assert "changed since submission" in state.reason
    assert submitted in state.reason and now in state.reason
    status = subprocess.run(
        [sys.executable, "-m", "paddle_hpc.status", str(sweep_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "changed since submission" in status.stdout.replace("\n", "")


@pytest.mark.slurm
def test_an_image_without_that_python_or_paddle_is_named(
    tmp_path: Path, paddle_image: Path
) -> None:
    def enter(python: str) -> None:
        spec = {"image": str(paddle_image), "python": python}
        config = RunConfig.of({"program": {"module": "m"}, "cluster": {"container": spec}})
        run = SweepDir(tmp_path / "sweep").run("r1")
        private = tmp_path / python.replace("/", "_")
        private.mkdir()
        enter_image(config, run, {"USER": "ana"}, private, 1, None)

    with pytest.raises(ImageError, match=r"charliecloud could not run /opt/nope/python in .*"):
        enter("/opt/nope/python")
    with pytest.raises(ImageError, match=r"has no Paddle for /usr/bin/python3 .*container\.python"):
        enter("/usr/bin/python3")  # the image's system Python: Paddle is in /opt/paddle
