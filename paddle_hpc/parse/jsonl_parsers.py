"""The three ways a block of metrics lines becomes a pyarrow table, fastest first (see
`jsonl`): as CSV once every line has the same keys in the same place, with pyarrow's
JSON reader, and line by line, keeping the good lines and counting the bad ones."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

BLOCK_SIZE = 4 << 20  # bytes per parsing block


TO_CSV = bytes.maketrans(b":", b",")


DROP = b'{}"'  # spaces stay: pyarrow reads ' 0.5' as a number


def parse_as_csv(
    data: bytes | bytearray, lines: int, keys: Sequence[str], fields: Sequence[bytes]
) -> pa.Table:
    """The fast path (see the module docstring); raises ValueError when it does not apply."""
    names = [part for key in keys for part in (f"{key}\0", key)]
    table = pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
        parse_options=pa_csv.ParseOptions(quote_char=False),
        convert_options=pa_csv.ConvertOptions(
            column_types={
                name: pa.binary() if name.endswith("\0") else pa.float64() for name in names
            },
            null_values=["null", " null"],
            strings_can_be_null=False,
        ),
    )
    if table.num_rows != lines:
        raise ValueError("line count")
    for key, raw in zip(keys, fields, strict=True):
        expected = pa.scalar(raw, pa.binary())
        if not pa_compute.all(pa_compute.equal(table[f"{key}\0"], expected)).as_py():
            raise ValueError(f"not every line has {key!r} in the same place")
    return table.select(keys)


def parse_json(data: bytes | bytearray, lines: int) -> pa.Table:
    if lines == 0:
        return pa.table({})
    table = pa_json.read_json(
        pa.BufferReader(pa.py_buffer(data)), read_options=pa_json.ReadOptions(block_size=BLOCK_SIZE)
    )
    if table.num_rows != lines:  # blank lines are not rows
        raise ValueError("line count")
    for name in table.column_names:
        if not _numeric(table.schema.field(name).type):
            raise ValueError(f"{name} is not a number")
    return table


def _numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind))


def parse_lines(data: bytes) -> tuple[pa.Table, int, int]:
    """The good lines of one file as a table, the number of bad ones, and the first bad one."""
    rows = []
    bad, first = 0, 0
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            row = json.loads(line)
            ok = (
                isinstance(row, dict)
                and all(
                    value is None
                    or (isinstance(value, int | float) and not isinstance(value, bool))
                    for value in row.values()
                )
                and whole_steps(np.array([row.get("step")], dtype=float))[0]
            )
        except ValueError:
            ok = False
        if ok:
            rows.append(row)
        elif line.strip():
            bad += 1
            first = first or number
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {name: [row.get(name) for row in rows] for name in names}
    table = pa.table({name: pa.array(values, pa.float64()) for name, values in columns.items()})
    return table, bad, first


def whole_steps(step: np.ndarray) -> np.ndarray:
    """Which steps are whole numbers an int64 holds, or missing (NaN)."""
    with np.errstate(invalid="ignore"):
        whole: np.ndarray = np.isnan(step) | ((np.floor(step) == step) & (np.abs(step) < 2.0**63))
    return whole
