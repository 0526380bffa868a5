"""GPU sampling and the idle-GPU watchdog (node/gpu.py), and what the runs table makes
of the samples (collect/gpu.py). This machine has no GPU: tests/fixtures/nvidia-smi
holds a stand-in nvidia-smi that prints outputs in nvidia-smi's CSV query format."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from paddle_hpc.collect import collect
from paddle_hpc.collect.gpu import gpu_frame, over_time
from paddle_hpc.collect.tables import finals, stall_errors
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.manifest import RunEntry
from paddle_hpc.core.runstate import RunState, stopped_by
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.attempts import ended_as
from paddle_hpc.node.ending import idle_state
from paddle_hpc.node.gpu import (
    Gpu,
    GpuSampler,
    IdleClock,
    ours,
    parse_smi,
    sample_line,
    smi_command,
)
from paddle_hpc.node.launch import node_gpus
from paddle_hpc.plan.config import check_idle_timeout
from tests.fakes import make_sweep, write_run

SMI = Path(__file__).parent / "fixtures" / "nvidia-smi"


def recorded(name: str) -> str:
    return (SMI / name).read_text()


def test_the_query_output_is_read_gpu_by_gpu() -> None:
    gpus = parse_smi(recorded("busy.csv"))
    assert [g.index for g in gpus] == [0, 1, 2, 3]
    assert gpus[0] == Gpu(0, "GPU-6f3a2c1e-9b4d-4e8a-a1c7-3d5e2f9b0a14", 98.0, 30518.0, 81920.0)
    assert [g.util for g in gpus] == [98.0, 0.0, 100.0, 100.0]


def test_values_a_gpu_does_not_give_are_none_and_other_lines_are_left_out() -> None:
    mig = parse_smi(recorded("mig.csv"))
    assert [(g.util, g.mem_used_mb) for g in mig] == [(None, 9869.0), (None, 13.0)]
    assert parse_smi(recorded("no-driver.txt")) == []
    assert parse_smi("No devices were found\n") == []
    ugly = "\n  0 , GPU-x ,  [Not Supported] , [N/A], 81920  \r\nWarning: 1, 2\n"
    assert parse_smi(ugly) == [Gpu(0, "GPU-x", None, None, 81920.0)]


def test_a_node_samples_the_gpus_slurm_gave_it() -> None:
    listed = parse_smi(recorded("busy.csv"))  # every GPU of an unconstrained node
    assert [g.index for g in ours(listed, ["0", "1"])] == [0, 1]
    assert [g.index for g in ours(listed, ["2"])] == [2]
    assert [g.index for g in ours(listed, ["GPU-4a7d9e1b-3f5c-4b2e-96a8-2e8c5d1f3b47"])] == [3]
    # devices constrained: nvidia-smi lists only the job's two, whatever Slurm calls them
    assert [g.index for g in ours(listed[:2], ["4", "5"])] == [0, 1]
    assert ours(listed, ["6", "7"]) == []  # cannot tell which: none rather than others'


def test_the_node_gpus_are_slurms_or_launch_devices() -> None:
    config = RunConfig.of({"resources": {"gpus_per_node": 2}})
    assert node_gpus({"CUDA_VISIBLE_DEVICES": "0, 1,"}, config) == ("0", "1")
    assert node_gpus({}, config) == ()
    devices = RunConfig.of({"launch": {"devices": "GPU-a,GPU-b"}})
    assert node_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}, devices) == ("GPU-a", "GPU-b")


def test_a_sample_is_a_line_log_metrics_could_have_written() -> None:
    line = sample_line(parse_smi(recorded("mig.csv")), 1_800_000_000.12345, 2)
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line) == {
        "step": None,
        "time": 1_800_000_000.123,
        "attempt": 2,
        "sys.gpu.0.mem_used_mb": 9869.0,
        "sys.gpu.0.mem_total_mb": 40960.0,
        "sys.gpu.1.mem_used_mb": 13.0,
        "sys.gpu.1.mem_total_mb": 40960.0,
    }


def test_idle_means_every_gpu_at_zero_without_a_break() -> None:
    idle, busy, mig = (parse_smi(recorded(n)) for n in ("idle.csv", "busy.csv", "mig.csv"))
    clock = IdleClock()
    assert clock.sampled(idle, 0.0) == 0.0
    assert clock.sampled(idle, 5.0) == 0.0
    assert clock.sampled(busy[1:2], 6.0) == 0.0  # the one GPU at 0%
    assert clock.sampled(busy, 7.0) is None
    assert clock.sampled(idle, 8.0) == 8.0
    assert clock.sampled(mig, 9.0) is None  # says nothing: not idle
    assert clock.sampled([], 10.0) is None  # no answer: not idle


def test_nvidia_smi_is_found_on_the_launch_path() -> None:
    command = smi_command({"PATH": f"/nonexistent:{SMI}"})
    assert command is not None and command[0] == str(SMI / "nvidia-smi")
    assert subprocess.run(command, capture_output=True, check=False).returncode == 0
    assert smi_command({"PATH": "/nonexistent"}) is None


def env_with(output: str, code: int = 0) -> dict[str, str]:
    return {**os.environ, "FAKE_SMI_OUTPUT": output, "FAKE_SMI_EXIT": str(code)}


def sampler(
    tmp_path: Path, output: str, idle_timeout: float | None = None, **kw: object
) -> GpuSampler:
    command = smi_command({"PATH": str(SMI)})
    assert command is not None
    return GpuSampler(
        command,
        env_with(output, int(kw.pop("code", 0))),  # type: ignore[call-overload]
        ["0", "1"],
        tmp_path / "gpu-node0.jsonl",
        3,
        0.2,
        idle_timeout,
        **kw,  # type: ignore[arg-type]
    )


def test_the_sampler_writes_a_line_per_sample_and_leaves_busy_gpus_running(
    tmp_path: Path,
) -> None:
    work = subprocess.Popen(["sleep", "600"], start_new_session=True)
    thread = sampler(tmp_path, "busy.csv", 0.6, pgid=work.pid)
    thread.start()
    try:
        time.sleep(1.5)
        assert work.poll() is None and not thread.stopped_run
    finally:
        thread.stop()
        thread.join(5)
        work.kill()
        work.wait()
    lines = [json.loads(x) for x in (tmp_path / "gpu-node0.jsonl").read_text().splitlines()]
    assert len(lines) >= 3
    assert {k for k in lines[0] if k.startswith("sys.")} == {
        f"sys.gpu.{i}.{what}" for i in (0, 1) for what in ("util", "mem_used_mb", "mem_total_mb")
    }
    assert all(x["sys.gpu.0.util"] == 98 and x["attempt"] == 3 for x in lines)


def test_idle_gpus_stop_the_launcher_group_after_the_timeout(tmp_path: Path) -> None:
    work = subprocess.Popen(["sleep", "600"], start_new_session=True)
    seen: list[float] = []
    thread = sampler(tmp_path, "idle.csv", 1.0, on_idle=seen.append, pgid=work.pid)
    started = time.time()
    thread.start()
    try:
        assert work.wait(timeout=30) != 0  # SIGTERM to its group
    finally:
        work.kill()
    thread.join(5)
    assert thread.stopped_run and thread.idle == seen[0]
    assert started < seen[0] and time.time() - seen[0] >= 1.0


def test_a_failing_nvidia_smi_writes_nothing_stops_nothing_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    work = subprocess.Popen(["sleep", "600"], start_new_session=True)
    thread = sampler(tmp_path, "no-driver.txt", 0.4, code=9, pgid=work.pid)
    with caplog.at_level(logging.WARNING, logger="paddle_hpc.node.gpu"):
        thread.start()
        time.sleep(1.5)
        thread.stop()
        thread.join(5)
    try:
        assert work.poll() is None and not thread.stopped_run
    finally:
        work.kill()
        work.wait()
    assert not (tmp_path / "gpu-node0.jsonl").exists()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "exit code 9" in warned[0] and "NVIDIA driver" in warned[0]


def test_an_idle_run_fails_as_idle_and_retries_as_a_failure(tmp_path: Path) -> None:
    base = RunState("RUNNING", attempt=1, job="12_3", restarts=0)
    config = RunConfig.of(
        {
            "resources": {"gpus_per_node": 2},
            "sweep": {"max_retries": 1},
            "launch": {"idle_gpu_timeout": 600},
        }
    )
    state = idle_state(base, config, 1, 1_800_000_000.0)
    assert state.state == "FAILED" and state.retrying is True
    assert (
        state.reason == "IDLE: every GPU of node 1 at 0% for 600 s, since 2027-01-15T08:00:00+00:00"
    )
    assert stopped_by(state.reason) == "IDLE" and stopped_by("IDLEness") is None
    assert ended_as(state, None, lambda job: None) == "IDLE"
    run = RunEntry("r1", 0, (), {}, 0)
    worker_log = tmp_path / "runs" / "r1" / "logs" / "node0" / "workerlog.0"
    worker_log.parent.mkdir(parents=True)
    worker_log.write_bytes(b"".join(b"epoch %d\n" % i for i in range(40)) + b"waiting \xff")
    manifest = SimpleNamespace(runs=[run])
    errors = stall_errors(tmp_path, manifest, {"r1": {"reason": state.reason}})  # type: ignore[arg-type]
    assert errors["kind"].tolist() == ["IDLE"] and errors["message"].tolist() == [state.reason]
    assert errors["log"].tolist() == ["runs/r1/logs/node0/workerlog.0"]
    # where it stopped: the log's last lines, a byte that is no UTF-8 replaced
    assert errors["tail"][0].splitlines() == [
        *(f"epoch {i}" for i in range(26, 40)),
        "waiting \ufffd",
    ]


@pytest.mark.parametrize(
    ("launch", "gpus", "said"),
    [
        ({"idle_gpu_timeout": 600, "gpu_sample_interval": 30}, 0, "resources.gpus_per_node is 0"),
        ({"idle_gpu_timeout": 50, "gpu_sample_interval": 30}, 1, "set it to 60 s or more"),
        ({"idle_gpu_timeout": 50, "gpu_sample_interval": 0}, 1, "set it to 2 s or more"),
    ],
)
def test_an_idle_timeout_that_cannot_work_is_refused_by_name(
    launch: dict[str, int], gpus: int, said: str
) -> None:
    with pytest.raises(ConfigError, match=r"launch\.idle_gpu_timeout") as raised:
        check_idle_timeout(launch, gpus)
    assert said in str(raised.value)
    check_idle_timeout({"idle_gpu_timeout": None, "gpu_sample_interval": 0}, 0)
    check_idle_timeout({"idle_gpu_timeout": 60, "gpu_sample_interval": 30}, 1)


def samples(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """A metrics table of (run, source, name, value) rows."""
    frame = pd.DataFrame(rows, columns=["run_id", "source", "name", "value"])
    frame["step"] = pd.array([None] * len(rows), dtype="Int64")
    for column in ("run_id", "source", "name"):
        frame[column] = frame[column].astype("category")
    return frame


def test_the_runs_table_has_mean_utilisation_peak_memory_and_busy_gpus() -> None:
    node0, node1 = "runs/a/gpu-node0.jsonl", "runs/a/gpu-node1.jsonl"
    metrics = samples(
        [
            ("a", node0, "sys.gpu.0.util", 90.0),
            ("a", node0, "sys.gpu.1.util", 0.0),
            ("a", node0, "sys.gpu.0.util", 100.0),
            ("a", node0, "sys.gpu.1.util", 4.0),
            ("a", node0, "sys.gpu.0.mem_used_mb", 30518.0),
            ("a", node0, "sys.gpu.0.mem_total_mb", 81920.0),
            ("a", node1, "sys.gpu.0.util", 50.0),
            ("a", node1, "sys.gpu.1.util", 60.0),
            ("a", node1, "sys.gpu.1.mem_used_mb", 61440.0),
            ("a", "runs/a/metrics.jsonl", "loss", 0.5),
            ("b", "runs/b/metrics.jsonl", "loss", 0.7),
            ("b", "runs/b/metrics.jsonl", "sys.gpu.x.util", 1.0),  # not a sample's name
        ]
    )
    frame = gpu_frame(metrics)
    assert list(frame.index) == ["a"]
    assert frame.loc["a", "gpu_util"] == pytest.approx((90 + 0 + 100 + 4 + 50 + 60) / 6)
    assert frame.loc["a", "gpu_mem_max_mb"] == 61440.0
    assert frame.loc["a", "gpus_busy"] == 2  # node 1's two; node 0's GPU 1 averaged 2%
    # a script's own metric of the same shape is the script's, not a sample
    assert list(finals(metrics).columns) == ["final.loss", "final.sys.gpu.x.util"]


def test_runs_without_samples_get_typed_empty_columns() -> None:
    frame = gpu_frame(samples([("a", "runs/a/metrics.jsonl", "loss", 0.5)]))
    assert frame.empty and frame.dtypes.astype(str).tolist() == ["float64", "float64", "Int64"]
    assert gpu_frame(samples([])).empty


def test_collect_reads_each_nodes_samples_beside_the_scripts_metrics(tmp_path: Path) -> None:
    root = make_sweep(tmp_path, {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    running = '{"step": 0, "loss": 2.0}\n{"step": 1, "loss": 1.0}\n'
    write_run(root, "ra", running, state="RUNNING")  # an ended run samples no more
    write_run(root, "rb", '{"step": 0, "loss": 3.0}\n')
    (root / "runs" / "ra" / "logs" / "node1").mkdir()
    (root / "runs" / "ra" / "logs" / "node1" / "workerlog.0").write_text("")
    busy, idle = (parse_smi(recorded(n))[:2] for n in ("busy.csv", "idle.csv"))
    node0 = root / "runs" / "ra" / "gpu-node0.jsonl"
    node0.write_text(sample_line(busy, 1.0, 1) + sample_line(busy, 2.0, 1))
    (root / "runs" / "ra" / "gpu-node1.jsonl").write_text(sample_line(idle, 1.5, 1))
    first = collect(root)
    assert first.tables is not None
    runs, metrics = first.tables.runs, first.tables.metrics
    assert runs.loc["ra", "gpu_util"] == pytest.approx((98 + 0 + 98 + 0 + 0 + 0) / 6)
    assert runs.loc["ra", "gpus_busy"] == 1 and pd.isna(runs.loc["rb", "gpu_util"])
    assert runs["final.loss"].tolist() == [1.0, 3.0]
    sampled = metrics[metrics["name"] == "sys.gpu.0.util"]
    assert sorted(sampled["source"].astype(str).unique()) == [
        "runs/ra/gpu-node0.jsonl",
        "runs/ra/gpu-node1.jsonl",
    ]
    assert sampled["step"].isna().all() and set(sampled["run_id"].astype(str)) == {"ra"}
    node0.write_text(node0.read_text() + sample_line(idle, 3.0, 2))  # a later sample
    again = collect(root)
    assert again.tables is not None and again.parsed == 1
    assert again.tables.runs.loc["ra", "gpu_util"] == pytest.approx(196 / 8)


def test_over_time_each_run_is_one_line_from_nodes_on_their_own_clocks() -> None:
    start = pd.Timestamp("2026-12-05 10:00:00", tz="UTC")
    rows = []
    for i in range(3):  # node 0 samples at :00 and :30; node 1 7 s later
        at0, at1 = start + pd.Timedelta(seconds=30 * i), start + pd.Timedelta(seconds=30 * i + 7)
        rows += [("a", "runs/a/gpu-node0.jsonl", "sys.gpu.0.util", 90.0 + i, at0)]
        rows += [("a", "runs/a/gpu-node0.jsonl", "sys.gpu.1.util", 0.0, at0)]
        rows += [("a", "runs/a/gpu-node1.jsonl", "sys.gpu.0.util", 30.0, at1)]
        rows += [("a", "runs/a/gpu-node1.jsonl", "sys.gpu.0.mem_used_mb", 100.0 * i, at1)]
        rows += [("a", "runs/a/gpu-node0.jsonl", "sys.gpu.0.mem_used_mb", 50.0, at0)]
    late = start + pd.Timedelta(hours=2)  # a run that started later: its own minute 0
    rows += [("b", "runs/b/gpu-node0.jsonl", "sys.gpu.0.util", 100.0, late)]
    rows += [("b", "runs/b/metrics.jsonl", "sys.gpu.0.util", 5.0, late)]  # the script's
    metrics = samples([row[:4] for row in rows])
    metrics["time"] = [row[4] for row in rows]
    util = over_time(metrics, "util")
    assert sorted(util) == ["a", "b"]
    minutes, values = util["a"]
    assert minutes.tolist() == [0.0, 0.5, 1.0]
    assert values == pytest.approx([(90 + 0 + 30) / 3, (91 + 0 + 30) / 3, (92 + 0 + 30) / 3])
    assert [v.tolist() for v in util["b"]] == [[0.0], [100.0]]
    memory = over_time(metrics, "mem_used_mb")
    assert list(memory) == ["a"] and memory["a"][1].tolist() == [50.0, 100.0, 200.0]
    assert over_time(metrics[metrics["run_id"] == "b"], "mem_used_mb") == {}
