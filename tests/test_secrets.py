"""Secrets stay out of what paddle_hpc writes: names, ${oc.env:...} resolved on the node,
the launcher's environment without them, the shim that hands them over, the plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paddle_hpc.core.errors import ConfigError, PaddleHpcError
from paddle_hpc.core.secret_env import (
    REDACTED,
    is_secret,
    redact_override,
    resolve_env_refs,
    split_secrets,
)
from paddle_hpc.node.launch import SECRETS_SHIM
from paddle_hpc.plan.build import make_plan
from tests.test_launch import build as launch_of

TOKEN = "tok-3f9a$(id)'q\" x"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("MY_TOKEN", True),
        ("HF_TOKEN", True),
        ("WANDB_API_KEY", True),
        ("aws_secret_access_key", True),
        ("DB_PASSWORD", True),
        ("SMTP_PASSWD", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("SSH_PRIVATE", True),
        ("PATH", False),
        ("NCCL_DEBUG", False),
        ("SLURM_JOB_ID", False),
        ("CUDA_VISIBLE_DEVICES", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret(name) is secret


def test_split_and_resolve() -> None:
    plain, secret = split_secrets({"PATH": "/bin", "MY_TOKEN": TOKEN})
    assert plain == {"PATH": "/bin"} and secret == {"MY_TOKEN": TOKEN}
    env = {"MY_TOKEN": TOKEN}
    assert resolve_env_refs("${oc.env:MY_TOKEN}", env) == TOKEN
    assert resolve_env_refs("Bearer ${oc.env:MY_TOKEN}!", env) == f"Bearer {TOKEN}!"
    assert resolve_env_refs("${oc.env:NOPE,'fallback'}", env) == "fallback"
    assert resolve_env_refs("${oc.env:NOPE, x}", env) == "x"
    assert resolve_env_refs("$HOME ${other} plain", env) == "$HOME ${other} plain"
    with pytest.raises(KeyError):
        resolve_env_refs("${oc.env:NOPE}", env)


def test_redaction() -> None:
    assert redact_override("+launch.env.MY_TOKEN=abc") == f"+launch.env.MY_TOKEN={REDACTED}"
    assert redact_override("launch.env.MY_TOKEN=${oc.env:X}") == "launch.env.MY_TOKEN=${oc.env:X}"
    assert redact_override("optim.lr=0.1") == "optim.lr=0.1"
    assert redact_override("--wait") == "--wait"


CONFIG: dict[str, Any] = {
    "program": {"script": "/home/u/train.py", "module": None, "args": []},
    "launch": {"env": {"API_KEY": "${oc.env:MY_TOKEN}", "NCCL_DEBUG": "INFO"}},
}
NODE_ENV = {"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n1", "MY_TOKEN": TOKEN, "PATH": "/bin"}


def build(env: dict[str, str], config: dict[str, Any] = CONFIG) -> Any:
    """test_launch's build, on a CPU node with the secrets file given."""
    return launch_of(
        config,
        env,
        cuda=False,
        resolve=lambda host: "10.0.0.1",
        secrets_file=Path("/tmp/private/secrets.json"),
    )


def test_secrets_stay_out_of_the_launchers_environment() -> None:
    node = build(NODE_ENV)
    assert node.secrets == {"API_KEY": TOKEN, "MY_TOKEN": TOKEN}
    assert TOKEN not in json.dumps(node.env) and TOKEN not in " ".join(node.argv)
    assert node.env["NCCL_DEBUG"] == "INFO" and node.env["PATH"] == "/bin"
    shim = node.argv.index(str(SECRETS_SHIM))
    assert node.argv[shim + 1 : shim + 3] == ("/tmp/private/secrets.json", "/home/u/train.py")


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(PaddleHpcError, match=r"\$\{oc.env:MY_TOKEN\}.*MY_TOKEN is not set"):
        build({k: v for k, v in NODE_ENV.items() if k != "MY_TOKEN"})


def test_no_secrets_no_shim() -> None:
    node = build({"PATH": "/bin"}, {**CONFIG, "launch": {"env": {"NCCL_DEBUG": "INFO"}}})
    assert node.secrets == {} and str(SECRETS_SHIM) not in node.argv


def test_the_shim_hands_the_secrets_to_the_program(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"MY_TOKEN": TOKEN}))
    script = tmp_path / "dir with space" / "train.py"
    script.parent.mkdir()
    (script.parent / "helper.py").write_text("VALUE = 'helper'\n")
    script.write_text(
        "import json, os, sys\nimport helper\n"
        "print(json.dumps([os.environ['MY_TOKEN'], sys.argv, __name__, helper.VALUE]))\n"
    )
    out = subprocess.run(
        [sys.executable, str(SECRETS_SHIM), str(secrets), str(script), "--a", "b c"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == [TOKEN, [str(script), "--a", "b c"], "__main__", "helper"]


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "train.py").write_text("")
    (tmp_path / "conf" / "config.yaml").write_text(
        "program: {script: train.py}\n"
        "launch: {env: {API_KEY: '${oc.env:MY_TOKEN}', PLAIN: '${oc.env:MY_TOKEN}'}}\n"
        "sweep: {name: s, grid: {+x: [1, 2]}}\n"
    )
    return tmp_path / "conf"


def test_the_plan_keeps_env_references_as_text(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    plan = make_plan(conf, "config", ["+launch.env.HF_TOKEN=${oc.env:MY_TOKEN}"], conf.parent)
    for config in [plan.base, *(r.config for r in plan.runs)]:
        assert config["launch"]["env"] == {
            "API_KEY": "${oc.env:MY_TOKEN}",
            "PLAIN": "${oc.env:MY_TOKEN}",
            "HF_TOKEN": "${oc.env:MY_TOKEN}",
        }
    assert TOKEN not in json.dumps([plan.base, [r.config for r in plan.runs]])


def test_a_secret_written_in_the_config_is_refused(
    conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    with pytest.raises(ConfigError, match=r"launch.env.HF_TOKEN: a secret's value.*oc.env:HF"):
        make_plan(conf, "config", ["+launch.env.HF_TOKEN=abc"], conf.parent)
    monkeypatch.delenv("MY_TOKEN")  # checked at plan time: the nodes would miss it too
    with pytest.raises(ConfigError, match="MY_TOKEN"):
        make_plan(conf, "config", [], conf.parent)
