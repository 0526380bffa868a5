"""Composing and checking every point, with real Hydra on small config folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from paddle_hpc.core.errors import ConfigError, PaddleHpcError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import load
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.runner import materialize
from paddle_hpc.plan.build import build_manifest, chosen_already, make_plan
from paddle_hpc.plan.config import ComposedBase, config_groups
from paddle_hpc.plan.write import configs_as_yaml, to_yaml, write_plan

CONFIG = """\
defaults:
  - model: small
  - _self_
program:
  script: train.py
  args: [--lr, "${optim.lr}", --name, "${model.name}"]
optim:
  lr: 0.1
resources:
  nodes: 1
sweep:
  name: t
  grid:
    optim.lr: [0.1, 0.2]
"""


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text(CONFIG)
    (tmp_path / "train.py").write_text("")
    (tmp_path / "conf" / "model" / "small.yaml").write_text("name: small\nwidth: 8\n")
    (tmp_path / "conf" / "model" / "big.yaml").write_text(
        "name: big\nwidth: 64\nresources_hint: 2\n"
    )
    return tmp_path / "conf"


def plan(conf: Path, *overrides: str) -> object:
    return make_plan(conf, "config", list(overrides), conf.parent)


def test_points_are_composed_with_interpolated_args(conf: Path) -> None:
    result = make_plan(conf, "config", ["model=small,big"], conf.parent)
    args = [r.config["program"]["args"] for r in result.runs]
    assert args == [
        ["--lr", "0.1", "--name", "small"],
        ["--lr", "0.1", "--name", "big"],
        ["--lr", "0.2", "--name", "small"],
        ["--lr", "0.2", "--name", "big"],
    ]
    assert result.runs[1].config["model"]["width"] == 64
    assert result.runs[1].swept == {"optim.lr": "0.1", "model": "big"}
    assert result.executor == "auto"  # as configured: the backend resolves it
    assert result.sweep_dir == conf.parent / "sweeps" / "t"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("resources.nodez=2", "nodez"),
        ("resources.nodes=two", "resources.nodes=two: Value 'two' .* converted to Integer"),
        ("optim.lr=[1,2", "bad override"),
        ("optim.lr=interval(0,1)", "not a list of values"),
        ("model=huge", "huge"),
        ("model=null", "model=null: .*to leave a group out, use ~GROUP"),
        ("model=small,null", "grid point 1: optim.lr=0.1 model=null"),
        ("cluster.executor=cloud", "expected one of \\[auto, slurm, local\\]"),
        ("cluster.executor=local,slurm", "one value for the whole sweep"),
        ("sweep.max_parallel=many", "sweep.max_parallel=many"),
        ("resources.time=soon", "resources.time is 'soon'"),
        ("sweep.max_retries=-1", "sweep.max_retries is -1"),
        ("sweep.retry_on=[TIMEOUT]", "TIMEOUT is not retried automatically"),
        ("sweep.retry_on=[FAILED,BOGUS]", "'BOGUS' is not an end state to retry"),
        ("sweep.name=a,b", "sweep.name cannot be swept"),
        ("+program.module=x", "exactly one of program.script"),
        ("program.script=nope.py", "nope.py is not a file"),
        ("resources.sbatch.comment=x", "To append to your config use \\+resources"),
        ("+resources.sbatch.comment='a\\\\b'", "backslash"),
        # Hydra's + adds any key; one that paddle_hpc's groups do not have is a typo
        ("+resources.gpu_per_node=2", "resources.gpu_per_node is not an option"),
        ("++launch.stall=60", "launch.stall is not an option"),
        ("+sweep.retry_grow.memory=2", "sweep.retry_grow.memory is not an option"),
    ],
)
def test_bad_config_fails_before_anything_is_written(
    conf: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(conf, override)
    assert not (conf.parent / "sweeps").exists()


def test_sweep_settings_from_the_command_line_apply(conf: Path) -> None:
    (conf / "config.yaml").write_text(CONFIG + "width: 0\n")
    result = make_plan(
        conf,
        "config",
        ["sweep.name=other", "sweep.max_parallel=3", "+sweep.grid.width=[1,2,3]"],
        conf.parent,
    )
    assert result.sweep_dir == conf.parent / "sweeps" / "other"
    assert result.base["sweep"]["max_parallel"] == 3
    assert [r.swept["width"] for r in result.runs] == ["1", "2", "3"] * 2


def test_the_common_config_keeps_what_only_the_points_resolve(conf: Path) -> None:
    (conf / "config.yaml").write_text(CONFIG + "width: ???\nlabel: w${width}\n")
    result = plan(conf, "width=1,2")
    assert result.base["label"] == "w${width}"
    assert [r.config["label"] for r in result.runs] == ["w1", "w2", "w1", "w2"]


def test_a_bad_point_is_named_with_its_run(conf: Path) -> None:
    with pytest.raises(ConfigError) as info:
        plan(conf, "resources.nodes=1,0")
    text = str(info.value)
    assert "grid point 1: optim.lr=0.1 resources.nodes=0" in text
    assert "resources.nodes is 0; it must be 1 or more" in text


def test_repeated_values_are_refused(conf: Path) -> None:
    with pytest.raises(ConfigError, match="same run"):
        plan(conf, "optim.lr=0.1,0.1")


def test_a_grid_key_the_config_lacks_gets_advice_that_works(conf: Path) -> None:
    (conf / "config.yaml").write_text(CONFIG + "    extra: [1, 2]\n")
    with pytest.raises(
        ConfigError, match=r"sweep\.grid\.extra: .*name it '\+extra' in sweep\.grid"
    ):
        plan(conf)
    assert len(plan(conf, "+extra=1,2").runs) == 4  # type: ignore[attr-defined]
    (conf / "config.yaml").write_text(CONFIG + "    +extra: [1, 2]\n")
    result = plan(conf)
    assert [r.config["extra"] for r in result.runs] == [1, 2, 1, 2]  # type: ignore[attr-defined]


def test_a_run_id_does_not_change_with_how_it_is_submitted(conf: Path) -> None:
    ids = [r.run_id for r in plan(conf).runs]  # type: ignore[attr-defined]
    submitted = plan(conf, "cluster.executor=local", "resources.time=5", "sweep.max_parallel=1")
    assert [r.run_id for r in submitted.runs] == ids  # type: ignore[attr-defined]
    assert [r.run_id for r in plan(conf, "resources.nodes=2").runs] != ids  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"differ only in resources\.partition, which says how"):
        plan(conf, "resources.partition=a,b")


def test_the_sweep_directory_holds_every_run(conf: Path) -> None:
    result = plan(conf, "resources.nodes=1,2")
    manifest = build_manifest(result, ["python", "-m", "paddle_hpc.sweep"])  # type: ignore[arg-type]
    written = write_plan(result, manifest)  # type: ignore[arg-type]
    sweep = SweepDir(conf.parent / "sweeps" / "t")
    saved = load(sweep.path)
    assert saved == written and saved.state == "planned"
    assert len(saved.shapes) == 2 and {r.shape for r in saved.runs} == {0, 1}
    assert saved.axes == ("optim.lr", "resources.nodes")
    assert not sweep.runs.exists()  # a run's folder is made when it starts
    for run, spec in zip(saved.runs, result.runs, strict=True):  # type: ignore[attr-defined]
        assert run.config_at is not None
        materialize(sweep.run(run.run_id), sweep.run_configs, run.config_at)
        assert RunConfig.load(sweep.run(run.run_id).config) == RunConfig.of(spec.config)
        assert yaml.safe_load(sweep.run(run.run_id).config.read_text()) == spec.config
    assert saved.extra["base"]["optim"]["lr"] == 0.1  # the base as composed, for extending


def test_configs_as_yaml_is_each_whole_config_dumped() -> None:
    configs = [
        {"a": 1, "b": {"x": [1, "two", None], "y": {}}, "c": "it's \\ $(x)\n"},
        {"a": 1, "b": {"x": [1, "two", None], "y": {}}, "c": "other"},
        {"a": True, "b": [], "c": "1", "d": {"e": 1.0, "f": [{"g": "h"}]}},
        {"a": "1", "b": [], "c": 1, "d": {"e": 1, "f": [{"g": "h"}]}},
    ]
    assert list(configs_as_yaml(configs)) == [to_yaml(c) for c in configs]


GRID_OF_CONTAINERS = """\
program: {script: train.py}
opt: null
sweep:
  name: t
  grid:
    opt:
      - {"x:y": 2}
      - {"true": 1, "1": 2}
      - {"a,b": 3, "c=d": 4, "{e}": "f g", "h": [1, "two", null]}
      - {plain: 1}
    +extra: [[1, "two"], {"k": "v"}, 3]
"""


def test_lists_and_mappings_in_the_grid_reach_the_runs_as_yaml_wrote_them(
    conf: Path,
) -> None:
    (conf / "config.yaml").write_text(GRID_OF_CONTAINERS)
    import yaml

    written = yaml.safe_load(GRID_OF_CONTAINERS)["sweep"]["grid"]
    result = plan(conf)
    got = [(r.config["opt"], r.config["extra"]) for r in result.runs]  # type: ignore[attr-defined]
    assert got == [(o, e) for o in written["opt"] for e in written["+extra"]]
    assert len({r.run_id for r in result.runs}) == 12  # type: ignore[attr-defined]
    assert result.runs[9].swept["opt"] == "{plain:1}"  # type: ignore[attr-defined]


def test_run_dir_and_id_resolve_per_run(conf: Path) -> None:
    result = make_plan(
        conf,
        "config",
        [
            "program.args=[--out,${run:dir}/output,--id,${run:id}]",
            "+launch.env.SAVE=${run:dir}/ckpt",
            "sweep.dir='sweeps/with space $(x)'",
        ],
        conf.parent,
    )
    sweep = conf.parent / "sweeps" / "with space $(x)"
    assert result.sweep_dir == sweep
    for run in result.runs:
        run_dir = sweep / "runs" / run.run_id
        assert run.config["program"]["args"] == ["--out", f"{run_dir}/output", "--id", run.run_id]
        assert run.config["launch"]["env"]["SAVE"] == f"{run_dir}/ckpt"
    assert len({r.config["launch"]["env"]["SAVE"] for r in result.runs}) == 2
    # the sweep's shared config has no run: it keeps the text
    assert result.base["launch"]["env"]["SAVE"] == "${run:dir}/ckpt"


def test_run_values_outside_dir_and_id_are_refused(conf: Path) -> None:
    with pytest.raises(ConfigError, match=r"run \w+ \(grid point 0.*run:name.*dir, id"):
        plan(conf, "program.args=[${run:name}]")


def test_program_cwd_holds_the_script(conf: Path) -> None:
    suite = conf.parent / "suite repo"
    (suite / "tools").mkdir(parents=True)
    (suite / "tools" / "train.py").write_text("")
    result = plan(conf, "+program.cwd=suite repo", "program.script=tools/train.py")
    for run in result.runs:  # type: ignore[attr-defined]
        assert run.config["program"]["cwd"] == str(suite)
        assert run.config["program"]["script"] == str(suite / "tools" / "train.py")
    with pytest.raises(ConfigError, match=r"program.cwd is 'nowhere'.*not a directory"):
        plan(conf, "+program.cwd=nowhere")
    with pytest.raises(ConfigError, match=r"program.script is 'train.py'.*suite repo/train.py"):
        plan(conf, "+program.cwd=suite repo")


def test_program_cwd_in_the_run_dir_need_not_exist_yet(conf: Path) -> None:
    script = conf.parent / "train.py"
    result = plan(conf, "+program.cwd=${run:dir}/work", f"program.script={script}")
    for run in result.runs:  # type: ignore[attr-defined]
        assert run.config["program"]["cwd"] == str(result.sweep_dir / "runs" / run.run_id / "work")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "same"),
    [
        ((), True),
        (("model=small",), True),
        (("model=small", "data/set=mnist"), True),
        (("model=big",), False),
        (("model=small", "data/set=cifar"), False),
        (("+model=small",), False),
        (("++model=small",), False),
        (("~model",), False),
        (("model=small,big",), False),
        (("other=small",), False),
        (("model=null",), False),
    ],
)
def test_a_group_choice_the_base_already_made_is_not_composed_again(
    overrides: tuple[str, ...], same: bool
) -> None:
    composed = ComposedBase(OmegaConf.create({}), {}, {"model": "small", "data/set": "mnist"})
    assert chosen_already(composed, overrides) is same


@pytest.mark.parametrize(
    ("text", "where", "fix"),
    [
        ("program:\n  args: [--lr, ${optim.lr}]\n", "line 2, column 17", "must be quoted"),
        ("a: [1, 2\nb: 3\n", "line 2, column 2", ""),
        ("a: 1\n  b: 2\n", "line 2, column 4", ""),
    ],
)
def test_a_yaml_error_is_one_line_naming_the_file_and_line(
    tmp_path: Path, text: str, where: str, fix: str
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        make_plan(tmp_path / "conf", "config", [], tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'conf' / 'config.yaml'}, {where}: ")
    assert "\n" not in message and fix in message


def test_config_groups_are_folders_of_configs_and_never_a_sweeps(tmp_path: Path) -> None:
    """A project whose config dir is its own folder (`-cd .`) holds its sweeps there."""
    for folder in ("model", "data/set", "data", ".hidden", "__pycache__", "outputs/x"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    for config in ("model/small.yaml", "data/set/mnist.yml", ".hidden/a.yaml"):
        (tmp_path / config).write_text("a: 1\n")
    sweep = tmp_path / "sweeps" / "old"
    (sweep / "runs" / "r0123456789").mkdir(parents=True)
    (sweep / "manifest.json").write_text("{}")
    (sweep / "config.yaml").write_text("a: 1\n")
    (sweep / "runs" / "r0123456789" / "config.yaml").write_text("a: 1\n")
    assert config_groups(tmp_path) == ["data/set", "model"]


def test_a_run_config_cut_short_is_an_error_naming_the_run(tmp_path: Path) -> None:
    sweep = SweepDir(tmp_path / "s $(x)")
    sweep.path.mkdir()
    sweep.run_configs.write_text("a: 1\n")
    with pytest.raises(PaddleHpcError, match=r"run r1: cannot read its config .* ends before"):
        materialize(sweep.run("r1"), sweep.run_configs, (0, 50))
    materialize(sweep.run("r2"), sweep.run_configs, (0, 5))
    assert sweep.run("r2").config.read_text() == "a: 1\n"
    materialize(sweep.run("r2"), sweep.run_configs, (3, 2))  # there already: kept
    assert sweep.run("r2").config.read_text() == "a: 1\n"
