"""Secrets: environment variables whose names look like one (`*TOKEN*`, `*KEY*`,
`*SECRET*`, `*PASSWORD*`, ...). Nothing paddle_hpc writes holds their values.

A secret reaches a run through the environment only: `launch.env` names it as
`${oc.env:NAME}`, which stays that text in the configs and is resolved on the compute
node, and the submitting shell's own variables reach the node through sbatch. Paddle's
launcher writes its whole environment to the log folder (`envlog.N`,
`backup_env.N.json`, the pod log), so the secrets are kept out of the launcher's
environment: the node runner hands them over in a private file (mode 0600, outside the
sweep directory, removed when the launcher ends), which `secrets_shim.py` reads into
each training process's environment before the program starts.

Node side: no heavy imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSW(?:OR)?D|CREDENTIAL|PRIVATE", re.IGNORECASE)
_ENV_REF = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)(?:,([^}]*))?\}")
REDACTED = "<redacted>"


def is_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def split_secrets(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """env -> (the variables that are not secrets, the secrets)."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for name, value in env.items():
        (secret if is_secret(name) else plain)[name] = value
    return plain, secret


def has_env_ref(text: object) -> bool:
    return isinstance(text, str) and _ENV_REF.search(text) is not None


def resolve_env_refs(text: str, environ: Mapping[str, str]) -> str:
    """'${oc.env:NAME}' and '${oc.env:NAME,default}' in text -> the variable's value
    here, as OmegaConf's oc.env resolves them; a missing variable without a default
    raises KeyError."""

    def value(match: re.Match[str]) -> str:
        name, default = match[1], match[2]
        if name in environ:
            return environ[name]
        if default is None:
            raise KeyError(name)
        return default.strip().strip("'\"")

    return _ENV_REF.sub(value, text)


def redact_override(text: str) -> str:
    """'+launch.env.MY_TOKEN=abc' -> '+launch.env.MY_TOKEN=<redacted>'; others as they are."""
    key, sep, value = text.partition("=")
    if sep and is_secret(key.rsplit(".", 1)[-1]) and not has_env_ref(value):
        return f"{key}={REDACTED}"
    return text
