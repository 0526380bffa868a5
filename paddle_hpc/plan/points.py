"""Each grid point's resolved config, from a base config composed once.

Hydra would compose the config again for every point; a grid of 1,000 points cannot
pay for that, nor for 1,000 deep copies of an OmegaConf tree, nor for resolving every
interpolation 1,000 times (OmegaConf parses an interpolation each time it resolves it).

The usual grid only sets plain values (`optim.lr=0.1`), and every point sets the same
keys, so the points are applied one after the other to a single working copy: each
point overwrites what the one before it set. Per point, the base's plain form is
copied, the swept keys are read back, and each interpolation is resolved again only
when a swept key it refers to has a value not seen before. Plain references count,
and so do `${oc.env:X}`, `${oc.decode:...}` and Hydra's `${now:...}` with literal
arguments, which read nothing of the config (the environment does not change while a
sweep is planned; Hydra caches `now` itself). Any other interpolation (another
resolver, `${run:dir}`, `${${k}}`, anything with a backslash) is resolved at every
point.

Keys added with `+key` or `++key` are added once, as the first point adds them, to a
copy of the base that every point of that shape then changes in place. Overrides that
delete keys (`~key`) or whose value is a list or a mapping (which Hydra merges into
what is there) would leave traces in a shared copy; a point with any of them is
applied to its own copy of the base instead. Either way the overrides go through
Hydra's own way of applying them (`core.compat.apply_overrides`), so the schema checks
and error messages are Hydra's and OmegaConf's.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import Container, DictConfig, ListConfig, OmegaConf

from paddle_hpc.core import compat


def resolved(cfg: Container) -> dict[str, Any]:
    """cfg as plain, resolved Python values (enums as their names)."""
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


def apply_overrides(base: DictConfig, overrides: Sequence[Override]) -> DictConfig:
    """A copy of base with the overrides applied the way Hydra applies them."""
    cfg = copy.deepcopy(base)
    compat.apply_overrides(overrides, cfg)
    return cfg


# A node's place in a config: its keys from the root (list indexes as ints).
KeyPath = tuple[str | int, ...]


def interpolations(cfg: DictConfig | ListConfig) -> dict[KeyPath, str]:
    """KeyPath -> text of every node whose value is an interpolation ('${...}')."""
    return _interpolations(cfg, OmegaConf.to_container(cfg, resolve=False), ())


def _interpolations(
    cfg: DictConfig | ListConfig, plain: Any, prefix: KeyPath
) -> dict[KeyPath, str]:
    found = {}
    items = enumerate(plain) if isinstance(plain, list) else plain.items()
    for key, value in items:
        path = (*prefix, key)
        if OmegaConf.is_interpolation(cfg, key):
            found[path] = str(value)
        elif isinstance(value, dict | list):
            found.update(_interpolations(cfg[key], value, path))
    return found


def dotted(plain: Any, path: KeyPath) -> str | None:
    """The path as a dotted key ('a.b.0'); None when a mapping key on it is not a
    string or holds a dot ({'a.b': ..}, {10: ..}), which a dotted key cannot name."""
    node = plain
    for key in path:
        if isinstance(node, dict) and not (isinstance(key, str) and "." not in key):
            return None
        node = node[key]
    return ".".join(map(str, path))


_REFERENCE = re.compile(r"\$\{(\.*)([\w-]+(?:\.[\w-]+)*)\}")
# resolvers that read nothing of the config, called with literal arguments
_CONSTANT = re.compile(r"\$\{(?:oc\.env|oc\.decode|now):[^${}\\]*\}")


def references(path: str, text: str) -> frozenset[str] | None:
    """Absolute keys that the interpolation `text` at `path` refers to.

    None unless every `${...}` in it is a plain reference to a key ('${optim.lr}',
    relative '${.x}' and '${..x}') or a resolver that reads nothing of the config
    (`_CONSTANT`): other resolvers and nested interpolations may depend on anything.
    """
    if "\\" in text:
        return None
    text = _CONSTANT.sub("", text)
    if "${" in _REFERENCE.sub("", text):
        return None
    parent = path.split(".")[:-1]
    keys = set()
    for dots, key in _REFERENCE.findall(text):
        if dots:
            up = len(dots) - 1
            if up > len(parent):
                return None
            key = ".".join([*parent[: len(parent) - up], key])
        keys.add(key)
    return frozenset(keys)


def related(a: str, b: str) -> bool:
    """True when one dotted key is the other or lies inside it."""
    return a == b or a.startswith(f"{b}.") or b.startswith(f"{a}.")


def dependencies(
    texts: Mapping[str, str], swept: Collection[str], unknown: Collection[str] = ()
) -> dict[str, frozenset[str] | None]:
    """Interpolation path -> the swept keys its value depends on, following chains of
    interpolations; None when that cannot be known (see `references`, and the paths
    in `unknown`) or when a swept key overrides the interpolation."""
    refs = {
        path: None if path in unknown else references(path, text) for path, text in texts.items()
    }
    found: dict[str, frozenset[str] | None] = {}

    def visit(path: str, stack: frozenset[str]) -> frozenset[str] | None:
        if path in found:
            return found[path]
        keys = refs[path]
        # A swept key at or inside the path replaces the interpolation itself.
        known = keys is not None and path not in stack and not any(related(s, path) for s in swept)
        deps: set[str] | None = set() if known else None
        for key in keys or ():
            if deps is None:
                break
            deps.update(s for s in swept if related(s, key))
            for other in refs:
                if related(other, key):
                    sub = visit(other, stack | {path})
                    deps = None if sub is None else deps | sub
                    if deps is None:
                        break
        found[path] = None if deps is None else frozenset(deps)
        return found[path]

    for path in texts:
        visit(path, frozenset())
    return found


def is_in_place(override: Override) -> bool:
    """True when applying the override to a shared copy leaves nothing of the previous
    point, once the key it adds (if any) is there."""
    return override.type != OverrideType.DEL and not isinstance(override.value(), list | dict)


def adds(override: Override) -> bool:
    return override.type in (OverrideType.ADD, OverrideType.FORCE_ADD)


def plain_copy(value: Any) -> Any:
    """A copy of nested dicts and lists of scalars; much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_copy(v) for v in value]
    return value


def set_path(data: dict[str, Any], path: str | KeyPath, value: Any) -> None:
    """data[a][b][0] = value for path 'a.b.0' or ('a', 'b', 0)."""
    *parents, last = path.split(".") if isinstance(path, str) else path
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def get_path(cfg: DictConfig, path: KeyPath) -> Any:
    """cfg's value at path, resolved."""
    node: Any = cfg
    for key in path:
        node = node[key]
    return node


def plain_value(value: Any) -> Any:
    if isinstance(value, Container):
        return OmegaConf.to_container(value, resolve=True, enum_to_str=True)
    if isinstance(value, enum.Enum):
        return value.name
    return value


class PointResolver:
    """Applies grid points to one base config; see the module docstring."""

    def __init__(self, base: DictConfig) -> None:
        self._base = base
        # per set of added keys: the base with them added, shared by those points
        self._shared: dict[tuple[str, ...], _SharedCopy | None] = {}

    @property
    def base(self) -> DictConfig:
        return self._base

    def resolve(self, overrides: Sequence[Override]) -> dict[str, Any]:
        """The point's config, resolved. Raises Hydra's or OmegaConf's error."""
        added = tuple(o.key_or_group for o in overrides if adds(o))
        if added not in self._shared:
            self._shared[added] = self._share(overrides)
        shared = self._shared[added]
        if shared is None or not all(is_in_place(o) for o in overrides):
            return resolved(apply_overrides(self._base, overrides))
        changes = [
            dataclasses.replace(o, type=OverrideType.CHANGE) if adds(o) else o for o in overrides
        ]
        return shared.resolve(changes)

    def _share(self, overrides: Sequence[Override]) -> _SharedCopy | None:
        """A copy to share for points that add the keys these overrides add: the base
        with them added, as Hydra adds them; None when one is there already (`+key`
        then fails, which the point's own copy reports as Hydra does)."""
        to_add = [o for o in overrides if adds(o)]
        if not to_add:
            return _SharedCopy(self._base)
        if any(
            o.type == OverrideType.ADD and OmegaConf.select(self._base, o.key_or_group) is not None
            for o in to_add
        ):
            return None
        if not all(is_in_place(o) for o in to_add):
            return None
        return _SharedCopy(apply_overrides(self._base, to_add))


class _SharedCopy:
    """One working copy that points changing the same keys are applied to in turn."""

    def __init__(self, base: DictConfig) -> None:
        self._work = copy.deepcopy(base)
        plain = OmegaConf.to_container(base, resolve=False, enum_to_str=True)
        assert isinstance(plain, dict)
        self._plain: dict[str, Any] = {str(k): v for k, v in plain.items()}
        texts = interpolations(base)
        # Under a key a dotted key cannot name ({'a.b': ..}, {10: ..}): resolved at every
        # point, and so is every interpolation that refers to one, by its name with the
        # dots as they are. Two paths can share that name: the other is resolved apart.
        unnamed = [path for path in texts if dotted(plain, path) is None]
        self._unknown = frozenset(".".join(map(str, path)) for path in unnamed)
        self._texts = {".".join(map(str, path)): text for path, text in texts.items()}
        self._paths = {".".join(map(str, path)): path for path in texts}
        self._apart = [p for p in unnamed if self._paths[".".join(map(str, p))] != p]
        self._deps: dict[tuple[str, ...], dict[str, frozenset[str] | None]] = {}
        self._seen: dict[tuple[str, tuple[str, ...]], Any] = {}

    def resolve(self, overrides: Sequence[Override]) -> dict[str, Any]:
        compat.apply_overrides(overrides, self._work)
        config: dict[str, Any] = plain_copy(self._plain)
        values = {o.key_or_group: o.input_line or "" for o in overrides}
        keys = tuple(values)
        if keys not in self._deps:
            self._deps[keys] = dependencies(self._texts, keys, self._unknown)
        for key in keys:
            set_path(config, key, plain_value(OmegaConf.select(self._work, key)))
        # a swept value that is itself an interpolation may resolve differently per point
        dynamic = {o.key_or_group for o in overrides if "${" in str(o.value())}
        for name, deps in self._deps[keys].items():
            path = self._paths[name]
            if deps is None or deps & dynamic:
                set_path(config, path, plain_value(get_path(self._work, path)))
                continue
            seen = (name, tuple(values[key] for key in sorted(deps)))
            if seen not in self._seen:
                self._seen[seen] = plain_value(get_path(self._work, path))
            set_path(config, path, plain_copy(self._seen[seen]))
        for path in self._apart:
            set_path(config, path, plain_value(get_path(self._work, path)))
        return config
