"""The user's pages stay true: README is a front page whose first-sweep files are the
repository's, every option of the config is documented once, and every link lands."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from paddle_hpc.core.schema import GROUPS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "examples" / "first-sweep"
PAGES = sorted((ROOT / "docs").glob("*.md"))


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def schema_keys(kind: type, prefix: str) -> list[str]:
    """Dotted keys of a schema dataclass; a nested dataclass's keys instead of its own."""
    hints = typing.get_type_hints(kind)
    keys = []
    for field in dataclasses.fields(kind):
        inner = hints[field.name]
        if dataclasses.is_dataclass(inner):
            keys += schema_keys(inner, f"{prefix}{field.name}.")  # type: ignore[arg-type]
        else:
            keys.append(f"{prefix}{field.name}")
    return keys


def test_readme_is_a_front_page_of_at_most_250_lines() -> None:
    assert len(README.splitlines()) <= 250
    assert "make demo" in README and "make test" in README


def test_the_first_sweep_in_readme_is_the_example_in_the_repository() -> None:
    (script,) = [b for b in code_blocks(README, "python") if "init_parallel_env" in b]
    (config,) = [b for b in code_blocks(README, "yaml") if "program:" in b]
    assert script == (EXAMPLE / "train.py").read_text(encoding="utf-8")
    assert config == (EXAMPLE / "conf" / "config.yaml").read_text(encoding="utf-8")


def test_every_option_is_documented_once_in_the_reference() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w.]+)` \|", text, flags=re.M)
    keys = [k for name, kind in GROUPS.items() for k in schema_keys(kind, f"{name}.")]
    assert sorted(rows) == sorted(keys)
    assert len(rows) == len(set(rows))


def test_every_relative_link_lands() -> None:
    for page in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *PAGES]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"


def test_readme_links_every_docs_page() -> None:
    for page in PAGES:
        assert f"(docs/{page.name})" in README, page.name
