"""Why pending runs wait: squeue's lines as the test cluster prints them, the reasons
that never clear, and the lines `status` prints."""

from __future__ import annotations

from datetime import datetime

from paddle_hpc.backend import RunStatus
from paddle_hpc.backend.view import pending_lines
from paddle_hpc.slurm.pending import Pending, never_clears, parse_pending

# squeue --me --noheader --array --states=PENDING --format='%i|%r|%S'
SQUEUE = """\
259_0|AssocMaxWallDurationPerJobLimit|N/A
259_1|AssocMaxWallDurationPerJobLimit|N/A
261_0|Resources|2026-12-05T08:02:45
261_1|Priority|2026-12-05T08:12:45
262|ReqNodeNotAvail, UnavailableNodes:n2|N/A

garbage
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
