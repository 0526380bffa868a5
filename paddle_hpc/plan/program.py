"""A run's program, checked before anything is submitted: its script and folder exist,
and `launch.env` writes no secret in plain text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.secret_env import has_env_ref, is_secret


def script_path(script: str | None, cwd: Path, key: str = "program.script") -> str | None:
    """program.script made absolute (relative to program.cwd, else to where the sweep
    starts), and checked."""
    if script is None:
        return None
    path = (cwd / script).resolve()
    if not path.is_file():
        raise ConfigError(f"{key} is {script!r}, but {path} is not a file.")
    return str(path)


def program_cwd(
    text: str | None, cwd: Path, run_dir: Path, key: str = "program.cwd"
) -> Path | None:
    """program.cwd made absolute (relative to where the sweep starts), and checked: it
    exists, or lies in the run's own folder, where the node creates it."""
    if text is None:
        return None
    path = (cwd / text).resolve()
    if not path.is_dir() and not path.is_relative_to(run_dir):
        raise ConfigError(
            f"{key} is {text!r}, but {path} is not a directory. Give the folder the "
            "program runs in (the suite's repository), or one under ${run:dir}."
        )
    return path


def resolve_programs(
    config: dict[str, Any], cwd: Path, run_dir: Path, scripts: dict[Any, str | None]
) -> tuple[Path | None, str | None]:
    """The run's program's and its steps' (sweep.then) folders and scripts made absolute
    and checked (`scripts`: the ones checked already); the program's folder and script."""

    def resolve(key: str, program: dict[str, Any]) -> Path | None:
        workdir = program_cwd(program["cwd"], cwd, run_dir, f"{key}.cwd")
        program["cwd"] = str(workdir) if workdir else None
        where = (program["script"], workdir or cwd)
        if where not in scripts:
            scripts[where] = script_path(*where, f"{key}.script")
        program["script"] = scripts[where]
        return workdir

    workdir = resolve("program", config["program"])
    for name, step in config["sweep"]["then"].items():
        resolve(f"sweep.then.{name}", step)
    return workdir, config["program"]["script"]


ENV_PREFIX = "launch.env."


def env_texts(base: DictConfig | None, overrides: Sequence[Override]) -> dict[str, Any]:
    """launch.env's values as written, before any interpolation is resolved: the base's,
    then what the overrides set."""
    texts: dict[str, Any] = {}
    if base is not None:
        found = OmegaConf.to_container(base.launch.env, resolve=False)
        assert isinstance(found, dict)
        texts.update({str(k): v for k, v in found.items()})
    for override in overrides:
        key = override.key_or_group
        if key.startswith(ENV_PREFIX):
            texts[key.removeprefix(ENV_PREFIX)] = override.value()
    return texts


def keep_env_refs(config: dict[str, Any], texts: Mapping[str, Any]) -> None:
    """A launch.env value given as ${oc.env:NAME} stays that text: the compute node
    resolves it, and the variable's value (a token, say) is written nowhere. A secret
    given any other way is refused, for it would be written in plain text."""
    env = config["launch"]["env"]
    for name in env:
        text = texts.get(name)
        if has_env_ref(text):
            env[name] = text
        elif is_secret(name):
            raise ConfigError(
                f"launch.env.{name}: a secret's value would be written to the sweep "
                f"directory in plain text. Give it as ${{oc.env:{name}}} and export {name} "
                "before the sweep: the compute nodes read it from their environment."
            )
