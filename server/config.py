"""Server settings: one typed, frozen value built from the command line, ``CANOPY_*``
environment variables, an optional ``canopy.toml`` and defaults, in that order of precedence.

Every value is checked here, at the edge, so the rest of the server works with typed values; an
invalid one is reported with the setting's name and the place it came from, because "invalid
port" is useless when the same setting can be given in three places.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from canopy.bridge import ConfigurationError, RetentionRule, parse_retention

from .incidents.sentry import SentryKey

__all__ = [
    "CONFIG_FILE",
    "LOG_LEVELS",
    "ORPHAN_POLICIES",
    "POD_PROVIDERS",
    "POD_SANDBOXES",
    "Settings",
    "SettingsError",
    "load_settings",
]

CONFIG_FILE: Final = "canopy.toml"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
POD_PROVIDERS: Final = ("local", "kubernetes")
ORPHAN_POLICIES: Final = ("stop", "resume")
POD_SANDBOXES: Final = ("auto", "landlock", "none")
_MiB: Final = 1024 * 1024
DEFAULT_DATA_DIR: Final = Path(".canopy")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the setting and its source."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``canopy serve`` needs to know; the defaults serve one developer on one
    machine (loopback only, the embedded SQLite log under ``.canopy/``).

    ``database_url`` left empty means the SQLite file ``<data_dir>/events.db``;
    ``workspace_roots`` left empty means the server's workspace alone. With
    ``tls_cert`` and ``tls_key`` (both or neither) the server speaks only HTTPS and WSS.
    ``sentry_keys`` and ``evidence_retention_days`` (0: keep evidence forever) come from the
    ``[evidence]`` table of ``canopy.toml`` only: DSN keys are a list, not one value.
    """

    host: str = "127.0.0.1"
    port: int = 8470
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    retention: tuple[RetentionRule, ...] = ()
    retention_interval: float = 3600.0
    max_request_bytes: int = 4 * _MiB
    log_level: str = "INFO"
    pods: str = "local"
    pod_server_url: str = ""
    pod_max_sessions: int = 5
    pod_idle_timeout: float = 4 * 3600.0
    pod_start_timeout: float = 30.0
    pod_call_timeout: float = 60.0
    pod_memory_mb: int = 2048
    pod_cpus: float = 2.0
    pod_orphan_policy: str = "stop"
    pod_orphan_timeout: float = 60.0
    pod_server_grace: float = 60.0
    pod_spare: bool = True
    pod_sandbox: str = "auto"
    pod_env: tuple[str, ...] = ()
    workspace_roots: tuple[Path, ...] = ()
    kubernetes_namespace: str = "canopy"
    kubernetes_image: str = "canopy-debug:latest"
    rate_limit_per_second: float = 200.0
    rate_limit_burst: int = 400
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_connections: int = 512
    max_connections_per_token: int = 64
    tls_cert: Path | None = None
    tls_key: Path | None = None
    sentry_keys: tuple[SentryKey, ...] = ()
    evidence_retention_days: int = 0

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("tls_cert and tls_key go together: give both, or neither")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'events.db'}")


# -- parsers: raw value (str from the environment, TOML value or typed CLI value) -> typed ----


def _integer(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw.strip())
    raise ValueError(f"{raw!r} is not a whole number")


def _string(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{raw!r} is not a non-empty string")
    return raw.strip()


def _port(raw: object) -> int:
    port = _integer(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"{port} is not a port number (0-65535; 0 picks a free port)")
    return port


def _data_dir(raw: object) -> Path:
    if isinstance(raw, Path):
        return raw
    return Path(_string(raw))


def _database_url(raw: object) -> str:
    url = _string(raw)
    scheme = url.partition(":")[0].partition("+")[0].lower()
    if scheme not in {"sqlite", "postgresql", "postgres"}:
        # The URL may hold a password: name only its scheme.
        raise ValueError(f"scheme {scheme!r} is not supported: use sqlite:///path or postgresql://")
    return url


def _retention(raw: object) -> tuple[RetentionRule, ...]:
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not a string like 'debugging.execution:keep=100000,age=7d'")
    try:
        return tuple(parse_retention(raw))
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


def _seconds(raw: object) -> float:
    problem = ValueError(f"{raw!r} is not a positive number of seconds")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise problem
    try:
        seconds = float(raw)
    except ValueError:
        raise problem from None
    if not 0 < seconds < float("inf"):
        raise problem
    return seconds


def _request_bytes(raw: object) -> int:
    size = _integer(raw)
    if size < 1024:
        raise ValueError(f"{size} is too small: requests need at least 1024 bytes")
    return size


def _pods(raw: object) -> str:
    kind = _string(raw).lower()
    if kind not in POD_PROVIDERS:
        raise ValueError(f"{raw!r} is not one of {', '.join(POD_PROVIDERS)}")
    return kind


def _url(raw: object) -> str:
    url = _string(raw)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url.rstrip("/")


def _positive_integer(raw: object) -> int:
    number = _integer(raw)
    if number < 1:
        raise ValueError(f"{number} is not a positive whole number")
    return number


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{raw!r} is not true or false")


def _cpus(raw: object) -> float:
    try:
        return _seconds(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a positive number of CPUs") from None


def _orphan_policy(raw: object) -> str:
    policy = _string(raw).lower()
    if policy not in ORPHAN_POLICIES:
        raise ValueError(f"{raw!r} is not one of {', '.join(ORPHAN_POLICIES)}")
    return policy


def _pod_sandbox(raw: object) -> str:
    mode = _string(raw).lower()
    if mode not in POD_SANDBOXES:
        raise ValueError(f"{raw!r} is not one of {', '.join(POD_SANDBOXES)}")
    return mode


def _items(raw: object, separator: str) -> list[str]:
    """A list from TOML, or from one string of ``separator``-separated items."""
    if isinstance(raw, str):
        return [item.strip() for item in raw.split(separator) if item.strip()]
    if isinstance(raw, list | tuple) and all(isinstance(item, str | Path) for item in raw):
        return [str(item).strip() for item in raw if str(item).strip()]
    raise ValueError(f"{raw!r} is not a list of strings")


def _variable_names(raw: object) -> tuple[str, ...]:
    names = _items(raw, ",")
    for name in names:
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError(f"{name!r} is not an environment variable name")
        if name.startswith("CANOPY_"):
            raise ValueError(f"{name!r}: the server's own CANOPY_* settings never reach a pod")
    return tuple(names)


def _roots(raw: object) -> tuple[Path, ...]:
    roots = tuple(Path(item) for item in _items(raw, os.pathsep))
    if not roots:
        raise ValueError(f"{raw!r} names no folder")
    return roots


def _rate(raw: object) -> float:
    try:
        return _seconds(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a positive number of requests per second") from None


def _file(raw: object) -> Path:
    """A path (checked for existence and content when the server starts: see server.tls)."""
    if isinstance(raw, Path):
        return raw
    return Path(_string(raw))


def _log_level(raw: object) -> str:
    level = _string(raw).upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{raw!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


@dataclass(frozen=True, slots=True)
class _Field:
    """One setting: its attribute, environment variable and parser."""

    name: str
    env: str
    parse: Callable[[object], Any]

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


_FIELDS: Final = (
    _Field("host", "CANOPY_HOST", _string),
    _Field("port", "CANOPY_PORT", _port),
    _Field("data_dir", "CANOPY_DATA_DIR", _data_dir),
    _Field("database_url", "CANOPY_DATABASE_URL", _database_url),
    _Field("retention", "CANOPY_RETENTION", _retention),
    _Field("retention_interval", "CANOPY_RETENTION_INTERVAL", _seconds),
    _Field("max_request_bytes", "CANOPY_MAX_REQUEST_BYTES", _request_bytes),
    _Field("log_level", "CANOPY_LOG_LEVEL", _log_level),
    _Field("pods", "CANOPY_PODS", _pods),
    _Field("pod_server_url", "CANOPY_POD_SERVER_URL", _url),
    _Field("pod_max_sessions", "CANOPY_POD_MAX_SESSIONS", _positive_integer),
    _Field("pod_idle_timeout", "CANOPY_POD_IDLE_TIMEOUT", _seconds),
    _Field("pod_start_timeout", "CANOPY_POD_START_TIMEOUT", _seconds),
    _Field("pod_call_timeout", "CANOPY_POD_CALL_TIMEOUT", _seconds),
    _Field("pod_memory_mb", "CANOPY_POD_MEMORY_MB", _positive_integer),
    _Field("pod_cpus", "CANOPY_POD_CPUS", _cpus),
    _Field("pod_orphan_policy", "CANOPY_POD_ORPHAN_POLICY", _orphan_policy),
    _Field("pod_orphan_timeout", "CANOPY_POD_ORPHAN_TIMEOUT", _seconds),
    _Field("pod_server_grace", "CANOPY_POD_SERVER_GRACE", _seconds),
    _Field("pod_spare", "CANOPY_POD_SPARE_WORKER", _boolean),
    _Field("pod_sandbox", "CANOPY_POD_SANDBOX", _pod_sandbox),
    _Field("pod_env", "CANOPY_POD_ENV", _variable_names),
    _Field("workspace_roots", "CANOPY_WORKSPACE_ROOTS", _roots),
    _Field("kubernetes_namespace", "CANOPY_KUBERNETES_NAMESPACE", _string),
    _Field("kubernetes_image", "CANOPY_KUBERNETES_IMAGE", _string),
    _Field("rate_limit_per_second", "CANOPY_RATE_LIMIT", _rate),
    _Field("rate_limit_burst", "CANOPY_RATE_LIMIT_BURST", _positive_integer),
    _Field("header_timeout", "CANOPY_HEADER_TIMEOUT", _seconds),
    _Field("body_timeout", "CANOPY_BODY_TIMEOUT", _seconds),
    _Field("keepalive_timeout", "CANOPY_KEEPALIVE_TIMEOUT", _seconds),
    _Field("max_connections", "CANOPY_MAX_CONNECTIONS", _positive_integer),
    _Field("max_connections_per_token", "CANOPY_MAX_CONNECTIONS_PER_TOKEN", _positive_integer),
    _Field("tls_cert", "CANOPY_TLS_CERT", _file),
    _Field("tls_key", "CANOPY_TLS_KEY", _file),
)


def load_settings(
    cli: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build the settings: ``cli`` (attribute name -> value, None meaning "not given") beats
    ``environ`` (default ``os.environ``), which beats ``<cwd>/canopy.toml``'s ``[server]``
    table, which beats the defaults. Relative paths (``data_dir``, ``tls_cert``, ``tls_key``,
    workspace roots) are taken relative to ``cwd``."""
    cli = cli or {}
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    from_file, evidence = _read_config_file(cwd / CONFIG_FILE)
    values: dict[str, Any] = {}
    for field in _FIELDS:
        found = _pick(field, cli, environ, from_file)
        if found is None:
            continue
        source, raw = found
        try:
            values[field.name] = field.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{field.name} (from {source}): {exc}") from None
    for name in ("data_dir", "tls_cert", "tls_key"):
        if (path := values.get(name)) is not None and not path.is_absolute():
            values[name] = cwd / path
    values.setdefault("data_dir", cwd / DEFAULT_DATA_DIR)
    if "workspace_roots" in values:
        values["workspace_roots"] = tuple(cwd / root for root in values["workspace_roots"])
    values.update(_evidence_settings(evidence, cwd / CONFIG_FILE))
    return Settings(**values)


def _pick(
    field: _Field, cli: Mapping[str, object], environ: Mapping[str, str], from_file: dict[str, Any]
) -> tuple[str, object] | None:
    """The winning raw value of ``field`` and a description of where it came from."""
    if cli.get(field.name) is not None:
        return f"option {field.option}", cli[field.name]
    if environ.get(field.env):
        return f"environment variable {field.env}", environ[field.env]
    if field.name in from_file:
        return f"{CONFIG_FILE} [server] {field.name}", from_file[field.name]
    return None


MAX_TOML_BYTES: Final = 1024 * 1024
"""The largest ``canopy.toml`` read: a project file holds a few settings and tag names."""


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document in ``path``, bounded: tomllib recurses once per level of nested
    arrays and inline tables, so a file over :data:`MAX_TOML_BYTES` or nested deeper than
    Python can follow is a ``TOMLDecodeError`` saying so, never a crash."""
    data = path.read_bytes()
    if len(data) > MAX_TOML_BYTES:
        raise tomllib.TOMLDecodeError(
            f"the file is {len(data)} bytes, over the limit of {MAX_TOML_BYTES}"
        )
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise tomllib.TOMLDecodeError(f"not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise tomllib.TOMLDecodeError("arrays or inline tables nested too deeply") from None


def _read_config_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``[server]`` and ``[evidence]`` tables of ``canopy.toml``, or nothing when the file
    does not exist."""
    try:
        document = read_toml(path)
    except FileNotFoundError:
        return {}, {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read it: {exc}") from None
    table, evidence = document.get("server", {}), document.get("evidence", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [server] must be a table")
    if not isinstance(evidence, dict):
        raise SettingsError(f"{path}: [evidence] must be a table")
    known = {field.name for field in _FIELDS}
    if unknown := sorted(set(table) - known):
        raise SettingsError(
            f"{path}: unknown setting [server] {unknown[0]} (known: {', '.join(sorted(known))})"
        )
    return table, evidence


_SENTRY_MEMBERS: Final = ("key", "tenant", "service")


def _evidence_settings(table: dict[str, Any], path: Path) -> dict[str, Any]:
    """``sentry_keys`` from ``[[evidence.sentry]]`` (``key``, ``tenant``, ``service`` each)
    and ``evidence_retention_days`` from ``[evidence] retention_days``."""
    if unknown := sorted(set(table) - {"sentry", "retention_days"}):
        raise SettingsError(
            f"{path}: unknown setting [evidence] {unknown[0]} (known: retention_days, sentry)"
        )
    values: dict[str, Any] = {}
    if "retention_days" in table:
        try:
            values["evidence_retention_days"] = _positive_integer(table["retention_days"])
        except ValueError as exc:
            raise SettingsError(f"{path}: [evidence] retention_days: {exc}") from None
    entries = table.get("sentry", [])
    if not isinstance(entries, list):
        raise SettingsError(f"{path}: [evidence] sentry must be an array of tables")
    keys: list[SentryKey] = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: [[evidence.sentry]] number {number}"
        if not isinstance(entry, dict):
            raise SettingsError(f"{where} must be a table")
        if unknown := sorted(set(entry) - set(_SENTRY_MEMBERS)):
            raise SettingsError(
                f"{where}: unknown member {unknown[0]!r} (known: key, tenant, service)"
            )
        parsed = []
        for name in _SENTRY_MEMBERS:
            try:
                parsed.append(_string(entry.get(name)))
            except ValueError as exc:
                raise SettingsError(f"{where}: {name}: {exc}") from None
        key, tenant, service = parsed
        if any(known.key == key for known in keys):
            raise SettingsError(f"{where}: the key is already given to another service")
        keys.append(SentryKey(key, tenant, service))
    values["sentry_keys"] = tuple(keys)
    return values
