"""What `collect` writes, and where: the tables' names, the folder, the state file that
makes the next collect incremental, and its format's version; the tables' files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from paddle_hpc.core import layout
from paddle_hpc.core.files import temp_beside

RESULTS = layout.RESULTS
STATE_FILE = "collect.json"
VERSION = 6
NAMES = ("runs", "metrics", "errors")
FORMATS = ("parquet", "csv")


def table_path(out: Path, name: str, fmt: str) -> Path:
    return out / f"{name}.{fmt}"


def writer(frame: pd.DataFrame, path: Path, fmt: str) -> Callable[[], None]:
    """Writes frame to path atomically when called; parquet is converted to Arrow first,
    so the call can run in another thread while this one goes on with pandas."""
    if fmt == "parquet":
        table = pa.Table.from_pandas(frame)
        categories = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
        # no min/max for the categorical columns: a row group of a million rows holds
        # about every run and metric name, so they prune nothing, and they cost a
        # quarter of writing the metrics table
        others = [str(c) for c in table.column_names if c not in categories]

        def write(tmp: Path) -> None:
            pq.write_table(table, tmp, use_dictionary=categories or False, write_statistics=others)
    else:

        def write(tmp: Path) -> None:
            frame.to_csv(tmp)

    def atomically() -> None:
        fd, tmp = temp_beside(path)
        os.close(fd)
        try:
            write(tmp)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    return atomically


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, index_col=0 if path.stem == "runs" else None)
