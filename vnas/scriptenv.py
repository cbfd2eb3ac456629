"""The valuation script's environment: a few basics, the task's VN_* variables and an explicit allowlist.

The worker's own environment holds the Redis URL (with its password), bearer tokens, TLS key paths and
cloud credentials. A script is code the mesh runs on request data, so it gets none of that: only a
safe PATH, the locale, time zone, HOME and TMPDIR when the worker has them, the names an operator lists
in VNAS_SCRIPT_ENV, and the VN_* variables of its task. The mesh's own secrets cannot be listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from vncommon.errors import ConfigError

# PATH unless VNAS_SCRIPT_ENV lists PATH (then the worker's own is passed).
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
# Passed when the worker has them: programs misbehave without a HOME, a locale or a temp directory.
BASICS = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
# Set by the worker for each task (SPEC section 9); an operator cannot pass the worker's own.
TASK_PREFIX = "VN_"
SECRETS = frozenset({"REDIS_URL", "GRPC_API_TOKENS", "GATEWAY_API_TOKENS"})
SECRET_PREFIXES = ("GRPC_TLS_",)
# AWS credentials and anything like them (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ACCESS_KEY_ID, ...).
_AWS_SECRET = re.compile(r"^AWS_.*(SECRET|TOKEN|ACCESS_KEY|PASSWORD)")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_secret(name: str) -> bool:
    """A variable of the mesh's own a script must never see."""
    upper = name.upper()
    return upper in SECRETS or upper.startswith(SECRET_PREFIXES) or bool(_AWS_SECRET.match(upper))


def parse_allowlist(raw: str) -> tuple[str, ...]:
    """VNAS_SCRIPT_ENV: comma-separated variable names, each checked; a secret is a ConfigError."""
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for name in names:
        check_name(name)
    return names


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"VNAS_SCRIPT_ENV: {name!r} is not an environment variable name")
    if is_secret(name):
        raise ConfigError(f"VNAS_SCRIPT_ENV lists {name}, a secret of the mesh; the valuation script never "
                          f"gets it (remove it from VNAS_SCRIPT_ENV)")
    if name.upper().startswith(TASK_PREFIX):
        raise ConfigError(f"VNAS_SCRIPT_ENV lists {name}; {TASK_PREFIX}* variables are set by the worker "
                          f"for each task")


def base_env(worker_env: Mapping[str, str], allowlist: Iterable[str] = ()) -> dict[str, str]:
    """What every script run starts from, before its task's VN_* variables are added."""
    env = {"PATH": SAFE_PATH}
    env.update({name: worker_env[name] for name in BASICS if name in worker_env})
    for name in allowlist:
        check_name(name)
        if name in worker_env:
            env[name] = worker_env[name]
    return env
