"""What a sweep directory costs a shared filesystem: its files, folders (inodes, which
Lustre and GPFS quotas count) and bytes on disk, in all and per run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DiskUse:
    files: int = 0  # and links: anything but a folder
    folders: int = 0
    bytes: int = 0  # allocated, as `du` counts

    @property
    def inodes(self) -> int:
        return self.files + self.folders

    def __add__(self, other: DiskUse) -> DiskUse:
        return DiskUse(
            self.files + other.files, self.folders + other.folders, self.bytes + other.bytes
        )


def disk_use(path: Path) -> DiskUse:
    """Files, folders and bytes under `path`, itself included; links are not followed."""
    files = folders = size = 0
    stack = [str(path)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                size += entry.stat(follow_symlinks=False).st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    folders += 1
                    stack.append(entry.path)
                else:
                    files += 1
    return DiskUse(files, folders + 1, size + path.lstat().st_blocks * 512)


def disk_use_by_entry(path: Path) -> dict[str, DiskUse]:
    """What each entry of the folder `path` holds, itself included: one walk of it."""
    found = {}
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                found[entry.name] = disk_use(Path(entry.path))
            else:
                blocks = entry.stat(follow_symlinks=False).st_blocks
                found[entry.name] = DiskUse(1, 0, blocks * 512)
    return found
