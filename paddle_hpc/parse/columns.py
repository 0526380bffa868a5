"""Metric rows (jsonl.Columns) of some files, or of several readings as one: the
collector joins what it read from text with what the nodes' compact files held."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from paddle_hpc.parse.jsonl import Columns


def empty() -> Columns:
    return Columns(
        file=np.empty(0, np.int32),
        step=np.empty(0, np.int64),
        no_step=np.empty(0, bool),
        time=np.empty(0, np.int64),
        attempt=np.empty(0, np.int64),
        name=np.empty(0, np.int32),
        value=np.empty(0, float),
        names=[],
    )


def only(cols: Columns, files: Sequence[int]) -> Columns:
    """The rows of some of the files (ascending indexes), numbered 0, 1, ... anew."""
    renumber = np.full(int(cols.file.max(initial=-1)) + 1, -1, dtype=np.int32)
    wanted = [f for f in files if f < len(renumber)]
    renumber[wanted] = [files.index(f) for f in wanted]
    keep = renumber[cols.file] >= 0 if len(renumber) else np.zeros(0, bool)
    return Columns(
        file=renumber[cols.file[keep]],
        step=cols.step[keep],
        no_step=cols.no_step[keep],
        time=cols.time[keep],
        attempt=cols.attempt[keep],
        name=cols.name[keep],
        value=cols.value[keep],
        names=cols.names,
        skipped={files.index(i): v for i, v in cols.skipped.items() if i in files},
    )


def joint_names(lists: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Several readings' metric names as one list; list k's name i has the code
    map[starts[k] + i] in it (equal lists, the usual case, are looked up once)."""
    names = list(dict.fromkeys(name for each in lists for name in each))
    codes = {name: code for code, name in enumerate(names)}
    known: dict[tuple[str, ...], list[int]] = {}
    flat = [c for each in lists for c in known.setdefault(tuple(each), [codes[n] for n in each])]
    widths = np.array([len(each) for each in lists], dtype=np.int64)
    return names, np.array([*flat, 0], dtype=np.int32), np.cumsum(widths) - widths


def merge(parts: Sequence[tuple[Columns, Sequence[int]]]) -> Columns:
    """Several readings' rows as one: part k's file i is file parts[k][1][i] now. Rows
    come in the order of their files' new numbers, each file's in its own order."""
    if not parts:
        return empty()
    names, name_map, name_starts = joint_names([cols.names for cols, _ in parts])
    counts = np.array([len(cols.file) for cols, _ in parts], dtype=np.int64)
    # each part's files' new numbers, one part after the other, and where each starts
    positions = [np.asarray(where, dtype=np.int32) for _, where in parts]
    file_base = np.repeat(np.cumsum([0] + [len(p) for p in positions[:-1]]), counts)
    every = [cols for cols, _ in parts]

    def joined(column: str) -> np.ndarray:
        return np.concatenate([getattr(cols, column) for cols in every])

    file = np.concatenate([*positions, np.zeros(1, np.int32)])[joined("file") + file_base]
    name = name_map[joined("name") + np.repeat(name_starts, counts)]
    skipped = {
        int(where[i]): value
        for (cols, _), where in zip(parts, positions, strict=True)
        for i, value in cols.skipped.items()
    }
    out = Columns(
        file=file,
        step=joined("step"),
        no_step=joined("no_step"),
        time=joined("time"),
        attempt=joined("attempt"),
        name=name,
        value=joined("value"),
        names=names,
        skipped=skipped,
    )
    if len(file) > 1 and (np.diff(file) < 0).any():
        order = np.argsort(file, kind="stable")  # a merge of sorted runs: linear
        for column in ("file", "step", "no_step", "time", "attempt", "name", "value"):
            setattr(out, column, getattr(out, column)[order])
    return out
