"""When runs start: squeue's and sbatch --test-only's lines as the test cluster prints
them, the reasons that never clear, what `status` and the dry run print, and the
partition picked per shape."""

from __future__ import annotations

from datetime import datetime

from paddle_hpc.backend import RunStatus
from paddle_hpc.backend.start import earliest, estimate_lines, pin_earliest
from paddle_hpc.backend.view import pending_lines
from paddle_hpc.slurm.pending import (
    Estimate,
    Pending,
    never_clears,
    parse_pending,
    parse_test_only,
)
from tests.test_cost import manifest

# squeue --me --noheader --states=PENDING --format='%i|%r|%S'
SQUEUE = """\
259_[0-1]|AssocMaxWallDurationPerJobLimit|N/A
261_0|Resources|2026-12-05T08:02:45
261_1|Priority|2026-12-05T08:12:45
262|ReqNodeNotAvail, UnavailableNodes:n2|N/A

garbage|Resources|N/A
"""


def test_squeue_lines() -> None:
    found = parse_pending(SQUEUE)
    assert sorted(found) == ["259_0", "259_1", "261_0", "261_1", "262"]
    assert found["259_0"] == Pending("AssocMaxWallDurationPerJobLimit", None)
    assert found["261_0"] == Pending("Resources", datetime(2026, 12, 5, 8, 2, 45))
    assert found["262"].reason.startswith("ReqNodeNotAvail")


def test_which_reasons_never_clear() -> None:
    assert never_clears("Resources") is None and never_clears("Priority") is None
    assert never_clears("AssocGrpGRES") is None  # clears as the group's jobs end
    assert "lower resources.time" in (never_clears("AssocMaxWallDurationPerJobLimit") or "")
    assert "fewer resources.nodes" in (never_clears("PartitionNodeLimit") or "")
    assert "GPUs" in (never_clears("QOSMaxGRESPerUser") or "")
    assert "sinfo -R" in (never_clears("ReqNodeNotAvail, UnavailableNodes:n2") or "")


def status(run_id: str, job: str, state: str = "PENDING") -> RunStatus:
    return RunStatus(run_id, {}, state, None, (), job, 1)


def test_what_status_says_of_pending_runs() -> None:
    runs = [
        status("ra", "259_0"),
        status("rb", "259_1"),
        status("rc", "261_0"),
        status("rd", "261_1"),
        status("re", "300_0", "RUNNING"),
        status("rf", "301_0"),  # pending in the manifest, gone from squeue meanwhile
    ]
    lines = pending_lines(runs, parse_pending(SQUEUE))
    assert lines == [
        "pending: 4 run(s), waiting for AssocMaxWallDurationPerJobLimit 2, Resources 1, "
        "Priority 1; Slurm expects the first to start at 2026-12-05 08:02, the last planned "
        "at 2026-12-05 08:12",
        "2 run(s) wait for AssocMaxWallDurationPerJobLimit, which does not clear by itself: "
        "they ask for a longer time limit than your association allows a job; lower "
        "resources.time (ra, rb)",
    ]
    assert pending_lines([status("re", "300_0", "RUNNING")], parse_pending(SQUEUE)) == []


def test_what_sbatch_test_only_says() -> None:
    text = (
        "sbatch: Job 263 to start at 2026-12-05T07:50:54 using 1 processors on nodes n1 "
        "in partition urgent\nsbatch:   Preempts: 260, 261\n"
    )
    found = parse_test_only(text, "urgent")
    assert found == Estimate("urgent", datetime(2026, 12, 5, 7, 50, 54), "n1", (260, 261))
    default = parse_test_only(
        "sbatch: Job 9 to start at 2026-12-05T08:00:00 using 4 "
        "processors on nodes n[1-2] in partition debug\n",
        "",
    )
    assert (default.partition, default.nodes, default.preempts) == ("debug", "n[1-2]", ())
    never = parse_test_only(
        "allocation failure: Requested node configuration is not available\n", "left"
    )
    assert never == Estimate(
        "left", None, error="allocation failure: Requested node configuration is not available"
    )


def test_the_earliest_partition_is_picked_per_shape() -> None:
    early, late = datetime(2026, 12, 5, 8), datetime(2026, 12, 5, 9)
    found = {
        0: [
            Estimate("left", late, "n1"),
            Estimate("right", early, "n2"),
            Estimate("gpu", None, error="x"),
        ],
        1: [Estimate("", early, "n1")],
    }
    assert earliest(found[0]) == found[0][1] and earliest([Estimate("a", None)]) is None
    assert estimate_lines(found) == [
        "shape 0 would start at 2026-12-05 09:00:00 in partition left on n1",
        "shape 0 would start at 2026-12-05 08:00:00 in partition right on n2 (the earliest)",
        "shape 0 cannot start in partition gpu: x",
        "shape 1 would start at 2026-12-05 08:00:00 on n1",
    ]
    resources = {"nodes": 1, "partition": "left,right,gpu"}
    before = manifest((2, resources), (1, {"nodes": 1, "partition": None}))
    after, picked = pin_earliest(before, found)
    assert after.shapes[0]["resources"] == {"nodes": 1, "partition": "right"}
    assert after.shapes[1] == before.shapes[1] and after.runs == before.runs
    assert picked == ["shape 0 goes to partition right, where it starts first"]
