"""What a sweep costs its filesystem, counted on literal folder trees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from paddle_hpc.core.disk import DiskUse, disk_use, disk_use_by_entry
from tests.fakes import make_sweep


def test_files_folders_and_bytes_are_counted_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "a" / "b c").mkdir(parents=True)
    (tmp_path / "a" / "b c" / "x $(id)").write_bytes(b"1" * 5000)
    (tmp_path / "a" / "empty").write_bytes(b"")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"2" * 100_000)
    (tmp_path / "a" / "link").symlink_to(outside)
    found = disk_use(tmp_path)
    assert (found.files, found.folders, found.inodes) == (3, 3, 6)
    assert 5000 <= found.bytes < 100_000  # the file's blocks, not the link's target
    assert found + DiskUse(1, 2, 3) == DiskUse(4, 5, found.bytes + 3)


def test_info_of_a_sweep_counts_its_files_per_run(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "sweep $(x)", {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    for run in ("ra", "rb"):
        (sweep / "runs" / run / "logs" / "node0").mkdir(parents=True)
        (sweep / "runs" / run / "state.json").write_text("{}")
        (sweep / "runs" / run / "logs" / "node0" / "workerlog.0").write_text("x\n")
    (sweep / "slurm").mkdir()
    (sweep / "slurm" / "12_0_0_log.out").write_text("")
    shown = subprocess.run(
        [sys.executable, "-m", "paddle_hpc.info", str(sweep), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(shown.stdout)
    # each run: its folder, logs/, node0/, state.json and workerlog.0; one Slurm file
    assert found["runs"] == 2 and found["inodes_per_run"] == (2 * 5 + 1) / 2
    assert found["inodes"] == found["files"] + found["folders"] == disk_use(sweep).inodes


def test_each_entry_is_counted_in_one_walk_and_they_add_up(tmp_path: Path) -> None:
    (tmp_path / "runs" / "ra").mkdir(parents=True)
    (tmp_path / "runs" / "ra" / "state.json").write_text("{}")
    (tmp_path / "manifest.json").write_text("{}")
    parts = disk_use_by_entry(tmp_path)
    assert parts["runs"] == disk_use(tmp_path / "runs") and parts["manifest.json"].files == 1
    whole = sum(parts.values(), DiskUse(0, 1, tmp_path.lstat().st_blocks * 512))
    assert whole == disk_use(tmp_path)
