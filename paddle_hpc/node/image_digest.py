"""The identity of a container image: the digest a submission records (sha256 of an
image file or of an image folder's tree, or Podman's image id), and each node's check
that it still has that image before its launcher starts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.files import cache_dir, write_json_atomic
from paddle_hpc.node.container import ImageError, image_kind


@dataclass(frozen=True)
class ImageId:
    """An image as submitted: `digest` names its content (sha256 of the file, of the
    folder's tree, or Podman's image id); `fingerprint` its sizes and times, a cheap
    first check: when it matches, the content is not read again."""

    image: str
    digest: str
    fingerprint: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ImageId:
        return cls(str(data["image"]), str(data["digest"]), str(data["fingerprint"]))


def identify(
    image: str, run: Callable[[list[str]], str] | None = None, cache: Path | None = None
) -> ImageId:
    """The image's identity now. `run` runs a command and returns its output (Podman).
    With a `cache` folder, a file's or folder's digest is kept there by path and
    fingerprint: a 10 GB .sif is then read once, not at every submission."""
    kind = image_kind(image)
    if kind == "name":
        found = (run or _output)(["podman", "image", "inspect", "--format", "{{.Id}}", image])
        digest = f"podman:{found.strip()}"
        return ImageId(image, digest, digest)
    path = Path(image)
    stamp = fingerprint(path)
    if cache is None:
        return ImageId(image, content_digest(path), stamp)
    cache_file = cache / "image-digests.json"
    try:
        known = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    entry = known.get(image)
    if isinstance(entry, dict) and entry.get("fingerprint") == stamp:
        return ImageId(image, str(entry["digest"]), stamp)
    digest = content_digest(path)
    known[image] = {"fingerprint": stamp, "digest": digest}
    with contextlib.suppress(OSError):
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_file, known)
    return ImageId(image, digest, stamp)


def of_shape(shape: Mapping[str, Any]) -> ImageId | None:
    """The identity of an array shape's container image now, at its submission."""
    image = (shape.get("container") or {}).get("image")
    return None if image is None else identify(str(image), cache=cache_dir())


def verify(expected: ImageId, node: str, run: Callable[[list[str]], str] | None = None) -> None:
    """Raises ImageError naming both digests when the image is not the one submitted."""
    try:
        kind = image_kind(expected.image)
    except ConfigError as exc:
        raise ImageError(f"the image is gone on {node}: {exc}") from exc
    if kind != "name" and fingerprint(Path(expected.image)) == expected.fingerprint:
        return
    try:
        now = identify(expected.image, run).digest
    except ImageError as exc:
        raise ImageError(f"the image on {node}: {exc}") from exc
    if now != expected.digest:
        raise ImageError(
            f"the image {expected.image} changed since submission: it was {expected.digest} "
            f"then, and is {now} on {node}. Retry the run to use the new image "
            "(`paddle-hpc retry`), or put the submitted one back."
        )


def _output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"{argv[0]} could not run: {exc}") from exc
    if done.returncode != 0:
        raise ImageError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done.stdout


def _entries(root: Path) -> Iterable[tuple[str, os.stat_result, Path]]:
    """Every entry below `root`, in a fixed order, without following links."""
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as scan:
            found = sorted(scan, key=lambda e: e.name)
        for entry in found:
            path = Path(entry.path)
            info = entry.stat(follow_symlinks=False)
            yield str(path.relative_to(root)), info, path
        stack.extend(
            sorted((Path(e.path) for e in found if e.is_dir(follow_symlinks=False)), reverse=True)
        )


def fingerprint(path: Path) -> str:
    """Sizes, modes and modification times: changes whenever the content is rewritten."""
    digest = hashlib.sha256()
    if path.is_file():
        info = path.stat()
        digest.update(f"{info.st_size} {info.st_mtime_ns}".encode())
    else:
        for name, info, _ in _entries(path):
            line = f"{name}\0{info.st_mode} {info.st_size} {info.st_mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
    return "stat:" + digest.hexdigest()[:32]


def content_digest(path: Path) -> str:
    """sha256 of an image file, or of a folder's tree: each entry's name, type, mode,
    and content (a file's bytes, a link's target)."""
    if path.is_file():
        return "sha256:" + _file_sha256(path)
    digest = hashlib.sha256()
    for name, info, entry in _entries(path):
        if stat.S_ISREG(info.st_mode):
            what = _file_sha256(entry)
        elif stat.S_ISLNK(info.st_mode):
            what = str(entry.readlink())
        else:
            what = (
                str(info.st_rdev)
                if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                else ""
            )
        line = f"{name}\0{stat.S_IMODE(info.st_mode)} {stat.S_IFMT(info.st_mode)}\0{what}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return "sha256:" + digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
