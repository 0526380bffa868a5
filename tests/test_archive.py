"""A run's log archive (core/archive.py): paths through it, adding to it, a broken one."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from paddle_hpc.core import archive


def test_a_path_through_an_archive_is_split_at_the_archive() -> None:
    assert archive.split("/s $(x)/runs/r1/logs.zip/attempts/2/logs/node0/workerlog.0") == (
        "/s $(x)/runs/r1/logs.zip",
        "attempts/2/logs/node0/workerlog.0",
    )
    assert archive.split("/s/runs/r1/logs/node0/workerlog.0") is None
    assert archive.split("/s/runs/r1/logs.zip") is None  # the archive itself


def test_adding_replaces_a_member_of_the_same_name_and_keeps_the_others(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r 1"
    run.mkdir(parents=True)
    first, second = run / "a.log", run / "b.log"
    first.write_text("one\n" * 1000)
    second.write_text("two\n")
    saved = archive.add(run / "logs.zip", [(first, "attempts/1/logs/node0/workerlog.0")])
    assert saved > 0 and not first.exists()
    archive.add(run / "logs.zip", [(second, "attempts/1/logs/node0/workerlog.0")])
    third = run / "c.log"
    third.write_text("three\n")
    archive.add(run / "logs.zip", [(third, "slurm/5_0_0_log.out")])
    assert archive.names(run / "logs.zip") == (
        "attempts/1/logs/node0/workerlog.0",
        "slurm/5_0_0_log.out",
    )
    inside = f"{run}/logs.zip/attempts/1/logs"
    assert archive.read(f"{inside}/node0/workerlog.0") == b"two\n"
    assert archive.entries(inside) == ["node0"]
    assert archive.entries(f"{run}/logs.zip") == ["attempts", "slurm"]
    assert archive.latest_logs(run) == "attempts/1/logs"
    assert archive.fingerprint(inside) == archive.fingerprint(f"{inside}/node0/workerlog.0")
    assert archive.fingerprint(f"{inside}/node1") is None
    assert archive.add(run / "logs.zip", []) == 0


def test_a_broken_archive_holds_nothing_and_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "logs.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert archive.names(broken) == () and archive.latest_logs(tmp_path) is None
    with pytest.raises(FileNotFoundError, match=r"workerlog\.0"):
        archive.read(f"{broken}/attempts/1/logs/node0/workerlog.0")
    good = tmp_path / "good" / "logs.zip"
    good.parent.mkdir()
    with zipfile.ZipFile(good, "w") as made:
        made.writestr("attempts/3/logs/node1/workerlog.0", "x")
        made.writestr("attempts/12/logs/node0/workerlog.0", "y")
    assert archive.latest_logs(good.parent) == "attempts/12/logs"  # by number, not by name
