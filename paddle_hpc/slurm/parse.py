"""Pure parsers of Slurm's output. They take text and return values; no I/O.

Each is tested with literal Slurm output in tests/test_slurm_parse.py.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from paddle_hpc.slurm.usage import allocated, cpu_seconds, requested_mb, size_mb

# What `sacct --parsable2` is asked for about allocations. JobName goes last: a name
# may hold '|'.
SACCT_FIELDS = (
    "JobID",
    "JobIDRaw",
    "State",
    "ExitCode",
    "NodeList",
    "Start",
    "End",
    "ElapsedRaw",
    "Partition",
    "AllocTRES",
    "ReqMem",
    "TimelimitRaw",
    "JobName",
)
# ... and with steps, what they used (an allocation's own row sums its steps' TotalCPU)
USAGE_FIELDS = (*SACCT_FIELDS[:-1], "TotalCPU", "MaxRSS", "JobName")
# what a header may lack (an older saved sacct.txt, the allocations' form): read as empty
_OPTIONAL = frozenset(("AllocTRES", "ReqMem", "TimelimitRaw", "TotalCPU", "MaxRSS"))


@dataclass(frozen=True)
class JobRef:
    """A Slurm job id as sacct and squeue print it.

    `12` is a plain job; `12_3` is task 3 of array 12; `12_[4-9%2]` stands for the
    pending tasks 4..9 of array 12 with at most 2 running; `12_3.batch` is a step.
    """

    job: int
    tasks: tuple[int, ...] | None = None
    throttle: int | None = None
    step: str | None = None

    @property
    def task(self) -> int | None:
        """The array index when this names exactly one task."""
        return self.tasks[0] if self.tasks is not None and len(self.tasks) == 1 else None


_JOB_ID = re.compile(
    r"""^(?P<job>\d+)
        (?:\+(?P<het>\d+))?
        (?:_(?:(?P<task>\d+)|\[(?P<tasks>[\d,\-:%]+)\]))?
        (?:\.(?P<step>[\w+-]+))?$""",
    re.VERBOSE,
)


def parse_int_ranges(text: str) -> tuple[int, ...]:
    """'0-3,7,10-14:2' -> (0, 1, 2, 3, 7, 10, 12, 14): Slurm's index lists."""
    values: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if match is None:
            raise ValueError(f"not a Slurm index range: {part!r} in {text!r}")
        first = int(match[1])
        last = int(match[2]) if match[2] else first
        stride = int(match[3]) if match[3] else 1
        if last < first or stride < 1:
            raise ValueError(f"not a Slurm index range: {part!r} in {text!r}")
        values.extend(range(first, last + 1, stride))
    return tuple(values)


def parse_job_id(text: str) -> JobRef:
    """Parses sacct's or squeue's JobID column (see `JobRef`)."""
    match = _JOB_ID.match(text.strip())
    if match is None:
        raise ValueError(f"not a Slurm job id: {text!r}")
    tasks: tuple[int, ...] | None = None
    throttle: int | None = None
    if match["task"] is not None:
        tasks = (int(match["task"]),)
    elif match["tasks"] is not None:
        spec, _, limit = match["tasks"].partition("%")
        tasks = parse_int_ranges(spec)
        throttle = int(limit) if limit else None
    return JobRef(int(match["job"]), tasks, throttle, match["step"])


def expand_nodelist(text: str) -> list[str]:
    """'n[1-2,5],gpu[08-10]' -> ['n1', 'n2', 'n5', 'gpu08', 'gpu09', 'gpu10'].

    Keeps zero padding, expands several bracket groups in one name as a product
    ('r[1-2]-n[1-2]'), and returns [] for sacct's 'None assigned' and '(null)'.
    """
    text = text.strip()
    if text in ("", "None assigned", "(null)", "None"):
        return []
    names: list[str] = []
    for item in _split_top_level(text):
        parts = re.split(r"(\[[^\]]*\])", item)
        choices: list[list[str]] = []
        for part in parts:
            if part.startswith("["):
                if not part.endswith("]"):
                    raise ValueError(f"unbalanced '[' in node list {text!r}")
                choices.append(_expand_bracket(part[1:-1], text))
            elif "[" in part or "]" in part:
                raise ValueError(f"unbalanced brackets in node list {text!r}")
            elif part:
                choices.append([part])
        names.extend("".join(combo) for combo in itertools.product(*choices))
    return names


def _split_top_level(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in node list {text!r}")
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"unbalanced '[' in node list {text!r}")
    items.append(text[start:])
    return [item for item in items if item]


def _expand_bracket(body: str, whole: str) -> list[str]:
    out: list[str] = []
    for part in body.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if match is None:
            raise ValueError(f"bad range {part!r} in node list {whole!r}")
        first, last = match[1], match[2] or match[1]
        if int(last) < int(first):
            raise ValueError(f"descending range {part!r} in node list {whole!r}")
        width = len(first) if first.startswith("0") else 0
        out.extend(str(n).zfill(width) for n in range(int(first), int(last) + 1))
    return out


@dataclass(frozen=True)
class SacctRecord:
    """One row of `sacct --parsable2`: a job, an array task, or a step."""

    ref: JobRef
    job_id_raw: int
    state: str  # 'CANCELLED by 0' -> 'CANCELLED'; the rest is in state_detail
    state_detail: str
    exit_code: int | None
    signal: int | None
    nodes: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    elapsed_s: int | None
    partition: str
    name: str
    gpus: int = 0  # allocated, on all its nodes (AllocTRES gres/gpu)
    cpus: int = 0  # allocated, on all its nodes
    total_cpu_s: float | None = None  # CPU time its processes used (its steps' sum)
    max_rss_mb: float | None = None  # a step's largest resident set, of one task
    req_mem_mb: float | None = None  # memory asked for per node
    time_limit_min: int | None = None  # None: none, or not known yet


def parse_sacct(text: str) -> list[SacctRecord]:
    """Parses `sacct --parsable2 --format=<SACCT_FIELDS or USAGE_FIELDS>` output, header
    line included. A column the header lacks (a sacct.txt saved before it was asked
    for) reads as empty."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split("|")
    wanted = [name for name in USAGE_FIELDS if name not in _OPTIONAL or name in header]
    if header != wanted:
        raise ValueError(f"unexpected sacct header {lines[0]!r}; expected {'|'.join(USAGE_FIELDS)}")
    records = []
    for line in lines[1:]:
        values = line.split("|", len(header) - 1)
        if len(values) != len(header):
            raise ValueError(
                f"sacct row has {len(values)} fields, expected {len(header)}: {line!r}"
            )
        row = dict(zip(header, values, strict=True))
        records.append(_record(row))
    return records


def _record(row: dict[str, str]) -> SacctRecord:
    state, _, detail = row["State"].partition(" ")
    exit_code, signal = _parse_exit_code(row["ExitCode"])
    gpus, cpus, nodes = allocated(row.get("AllocTRES", ""))
    limit = row.get("TimelimitRaw", "")
    return SacctRecord(
        ref=parse_job_id(row["JobID"]),
        job_id_raw=int(row["JobIDRaw"].split(".")[0]),
        state=state,
        state_detail=detail,
        exit_code=exit_code,
        signal=signal,
        nodes=_nodes(row["NodeList"]),
        start=_parse_time(row["Start"]),
        end=_parse_time(row["End"]),
        elapsed_s=int(row["ElapsedRaw"]) if row["ElapsedRaw"].isdigit() else None,
        partition=row["Partition"],
        name=row["JobName"],
        gpus=gpus,
        cpus=cpus,
        total_cpu_s=cpu_seconds(row.get("TotalCPU", "")),
        max_rss_mb=size_mb(row.get("MaxRSS", ""), default_unit="B"),
        req_mem_mb=requested_mb(row.get("ReqMem", ""), cpus, nodes),
        time_limit_min=int(limit) if limit.isdigit() else None,
    )


@functools.lru_cache(maxsize=4096)  # many tasks ran on the same nodes
def _nodes(text: str) -> tuple[str, ...]:
    return tuple(expand_nodelist(text))


def _parse_exit_code(text: str) -> tuple[int | None, int | None]:
    code, _, signal = text.partition(":")
    return (int(code) if code.isdigit() else None, int(signal) if signal.isdigit() else None)


def _parse_time(text: str) -> datetime | None:
    if text in ("", "Unknown", "None", "N/A"):
        return None
    return datetime.fromisoformat(text)


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_NO_LIMIT = ("UNLIMITED", "INFINITE", "-1")


def time_limit_minutes(text: str) -> int | None:
    """Slurm's --time formats ('30', '1:30:00', '2-12', '2-12:00:00') -> whole minutes,
    rounded up as sbatch does; None for no limit ('UNLIMITED', 'INFINITE', '-1', '0')."""
    text = str(text).strip()
    if text.upper() in _NO_LIMIT:
        return None
    match = _TIME.match(text)
    if match is None:
        raise ValueError(text)
    days, first, second, third = match.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
        total_s = int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    elif third is not None:  # HH:MM:SS
        total_s = int(first) * 3600 + int(second) * 60 + int(third)
    elif second is not None:  # MM:SS
        total_s = int(first) * 60 + int(second)
    else:  # MM
        total_s = int(first) * 60
    return -(-total_s // 60) or None


def slurm_time(minutes: int) -> str:
    """2085 -> '1-10:45:00': minutes as sbatch --time reads them (time_limit_minutes')."""
    return f"{minutes // 1440}-{minutes // 60 % 24:02d}:{minutes % 60:02d}:00"


# What `sinfo` is asked for: one line per partition and node configuration.
SINFO_FORMAT = "%P|%D|%c|%m|%G|%l|%s"


@dataclass(frozen=True)
class Partition:
    """What a partition can give one job at the most."""

    name: str
    default: bool
    nodes: int  # how many nodes it has
    max_nodes: int | None  # its MaxNodes per job; None: no limit
    cpus: int  # CPUs of its largest node
    memory_mb: int  # memory of its largest node
    gpus: int  # GPUs of the node with the most
    max_minutes: int | None  # MaxTime; None: no limit


_GPUS = re.compile(r"^gpu(?::[^:(]+)?:(\d+)")


def gres_gpus(text: str) -> int:
    """'gpu:2', 'gpu:a100:4(S:0-1)', 'gpu:2,shard:8', '(null)' -> the GPU count."""
    return sum(int(m[1]) for item in text.split(",") if (m := _GPUS.match(item.strip())))


def parse_sinfo_partitions(text: str) -> dict[str, Partition]:
    """`sinfo --noheader --format=SINFO_FORMAT` -> the partitions by name. A partition
    whose nodes differ prints a line per kind of node: their counts add up, and the
    largest node counts."""
    found: dict[str, Partition] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 7:
            continue
        name, count, cpus, memory, gres, limit, size = fields
        default = name.endswith("*")
        name = name.rstrip("*")
        try:
            top = size.rpartition("-")[2]
            part = Partition(
                name,
                default,
                int(count),
                None if top in ("infinite", "") else int(top),
                int(cpus.rstrip("+")),
                int(memory.rstrip("+")),
                gres_gpus(gres),
                time_limit_minutes(limit),
            )
        except ValueError:
            continue
        if name in found:
            seen = found[name]
            part = Partition(
                name,
                default or seen.default,
                seen.nodes + part.nodes,
                part.max_nodes,
                max(seen.cpus, part.cpus),
                max(seen.memory_mb, part.memory_mb),
                max(seen.gpus, part.gpus),
                part.max_minutes,
            )
        found[name] = part
    return found


def memory_mb(text: str) -> int | None:
    """sbatch --mem ('16G', '500M', '16000': megabytes) -> megabytes; None when unknown."""
    value = size_mb(str(text))
    return None if value is None else int(value)


def parse_scontrol_config(text: str) -> dict[str, str]:
    """`scontrol show config` -> {'MaxArraySize': '1001', ...}.

    Skips the 'Configuration data as of' line, section titles and blank lines;
    a repeated key (plugin sections) keeps its first value.
    """
    config: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or " " in key:
            continue
        config.setdefault(key, value.strip())
    return config


def max_array_size(config: Mapping[str, str]) -> int:
    """The largest array index plus one that the cluster accepts (Slurm's default: 1001)."""
    value = config.get("MaxArraySize", "1001")
    if not value.isdigit():
        raise ValueError(f"MaxArraySize is {value!r} in `scontrol show config`, not a number")
    return int(value)


def parse_sbatch_output(text: str) -> int:
    """The job id from `sbatch --parsable` ('123' or '123;cluster') or its plain message."""
    for line in text.splitlines():
        line = line.strip()
        match = re.fullmatch(r"(?:Submitted batch job )?(\d+)(?:;\S+)?", line)
        if match:
            return int(match[1])
    raise ValueError(f"no job id in sbatch's output: {text!r}")


def task_rows(records: Iterable[SacctRecord]) -> dict[tuple[int, int], SacctRecord]:
    """(array job id, task) -> its allocation row; a collapsed row of pending tasks
    ('12_[4-9%2]') stands for each of them."""
    rows: dict[tuple[int, int], SacctRecord] = {}
    for row in records:
        if row.ref.step is None and row.ref.tasks is not None:
            for task in row.ref.tasks:
                rows[(row.ref.job, task)] = row
    return rows
