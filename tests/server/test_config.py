"""Settings: precedence CLI > environment > canopy.toml > defaults, and errors that name the
setting and where its bad value came from."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from canopy.server.config import Settings, SettingsError, load_settings


def write_toml(folder: Path, text: str) -> None:
    (folder / "canopy.toml").write_text(text, encoding="utf-8")


def test_defaults_serve_one_developer(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.host == "127.0.0.1"
    assert settings.port == 8470
    assert settings.data_dir == tmp_path / ".canopy"
    assert settings.database_url == f"sqlite:///{tmp_path / '.canopy' / 'events.db'}"
    assert settings.max_request_bytes == 4 * 1024 * 1024
    assert settings.retention == ()
    assert settings.log_level == "INFO"


def test_cli_beats_environment_beats_file(tmp_path: Path) -> None:
    write_toml(tmp_path, '[server]\nport = 9001\nhost = "0.0.0.0"\nlog_level = "debug"\n')
    environ = {"CANOPY_PORT": "9002", "CANOPY_HOST": "::1"}
    settings = load_settings({"port": 9003, "host": None}, environ=environ, cwd=tmp_path)
    assert settings.port == 9003  # option
    assert settings.host == "::1"  # environment (the option was not given)
    assert settings.log_level == "DEBUG"  # file


def test_relative_data_dir_is_taken_from_the_working_directory(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": Path("state")}, environ={}, cwd=tmp_path)
    assert settings.data_dir == tmp_path / "state"
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'events.db'}"


def test_database_url_and_retention_from_environment(tmp_path: Path) -> None:
    environ = {
        "CANOPY_DATABASE_URL": "postgresql://canopy@db/canopy",
        "CANOPY_RETENTION": "debugging.execution:keep=100,age=7d",
        "CANOPY_MAX_REQUEST_BYTES": "65536",
    }
    settings = load_settings(environ=environ, cwd=tmp_path)
    assert settings.database_url == "postgresql://canopy@db/canopy"
    [rule] = settings.retention
    assert (rule.topic, rule.keep_last, rule.max_age) == (
        "debugging.execution",
        100,
        timedelta(days=7),
    )
    assert settings.max_request_bytes == 65536


@pytest.mark.parametrize(
    ("cli", "environ", "toml", "expected"),
    [
        ({}, {"CANOPY_PORT": "eighty"}, "", r"port \(from environment variable CANOPY_PORT\)"),
        ({"port": 70000}, {}, "", r"port \(from option --port\): 70000 is not a port number"),
        ({}, {}, "[server]\nport = true\n", r"port \(from canopy.toml \[server\] port\)"),
        ({}, {"CANOPY_LOG_LEVEL": "chatty"}, "", r"log_level .*CANOPY_LOG_LEVEL.*'chatty'"),
        ({}, {"CANOPY_RETENTION": "debugging.timeline:keep=1"}, "", r"retention .*never pruned"),
        ({}, {"CANOPY_MAX_REQUEST_BYTES": "12"}, "", r"max_request_bytes .*too small"),
        ({}, {}, '[server]\nretention_interval = "soon"\n', r"retention_interval .*canopy.toml"),
        ({}, {"CANOPY_POD_SANDBOX": "chroot"}, "", r"pod_sandbox .*'chroot' is not one of auto"),
        ({}, {"CANOPY_POD_ENV": "HOME,2FA"}, "", r"pod_env .*'2FA' is not an environment var"),
        ({}, {"CANOPY_POD_ENV": "CANOPY_DATABASE_URL"}, "", r"CANOPY_\* settings never reach"),
        ({}, {}, "[server]\npod_env = [1]\n", r"pod_env .*is not a list of strings"),
        ({}, {"CANOPY_WORKSPACE_ROOTS": ":"}, "", r"workspace_roots .*names no folder"),
    ],
)
def test_invalid_values_name_the_setting_and_its_source(
    tmp_path: Path, cli: dict[str, object], environ: dict[str, str], toml: str, expected: str
) -> None:
    if toml:
        write_toml(tmp_path, toml)
    with pytest.raises(SettingsError, match=expected):
        load_settings(cli, environ=environ, cwd=tmp_path)


def test_pod_settings_from_file_and_environment(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        '[server]\npod_sandbox = "Landlock"\npod_env = ["ROBOT_SITE", "LD_LIBRARY_PATH"]\n'
        'workspace_roots = ["robots", "/srv/shared"]\n',
    )
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.pod_sandbox == "landlock"
    assert settings.pod_env == ("ROBOT_SITE", "LD_LIBRARY_PATH")
    assert settings.workspace_roots == (tmp_path / "robots", Path("/srv/shared"))
    (tmp_path / "canopy.toml").unlink()
    environ = {"CANOPY_POD_ENV": "A, B", "CANOPY_WORKSPACE_ROOTS": "/a:b"}
    settings = load_settings(environ=environ, cwd=tmp_path)
    assert (settings.pod_sandbox, settings.pod_env) == ("auto", ("A", "B"))
    assert settings.workspace_roots == (Path("/a"), tmp_path / "b")


def test_database_url_errors_do_not_repeat_the_url(tmp_path: Path) -> None:
    environ = {"CANOPY_DATABASE_URL": "mysql://root:hunter2@db/x"}
    with pytest.raises(SettingsError, match=r"database_url .*'mysql' is not supported") as info:
        load_settings(environ=environ, cwd=tmp_path)
    assert "hunter2" not in str(info.value)


def test_unknown_file_settings_and_broken_files_are_refused(tmp_path: Path) -> None:
    write_toml(tmp_path, "[server]\nprot = 1\n")
    with pytest.raises(SettingsError, match=r"canopy.toml: unknown setting \[server\] prot"):
        load_settings(environ={}, cwd=tmp_path)
    write_toml(tmp_path, "[server\n")
    with pytest.raises(SettingsError, match=r"canopy\.toml: cannot read it"):
        load_settings(environ={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
        ("# " + "x" * 1024 * 1024 + "\n", "over the limit of 1048576"),
    ],
)
def test_a_hostile_file_is_refused_not_followed(tmp_path: Path, text: str, problem: str) -> None:
    write_toml(tmp_path, text)
    with pytest.raises(SettingsError, match=rf"canopy\.toml: cannot read it: .*{problem}"):
        load_settings(environ={}, cwd=tmp_path)


def test_other_tables_of_the_file_are_left_to_their_owners(tmp_path: Path) -> None:
    write_toml(tmp_path, '[pods]\nprovider = "kubernetes"\n')
    assert load_settings(environ={}, cwd=tmp_path).port == Settings().port


def test_sentry_keys_and_evidence_retention_from_the_file(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        "[evidence]\nretention_days = 30\n"
        '[[evidence.sentry]]\nkey = "k1"\ntenant = "acme"\nservice = "shop"\n'
        '[[evidence.sentry]]\nkey = "k2"\ntenant = "acme"\nservice = "billing"\n',
    )
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.evidence_retention_days == 30
    assert [(k.key, k.tenant, k.service) for k in settings.sentry_keys] == [
        ("k1", "acme", "shop"),
        ("k2", "acme", "billing"),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('evidence = "yes"\n', r"\[evidence\] must be a table"),
        ("[evidence]\nretention = 3\n", r"unknown setting \[evidence\] retention"),
        ("[evidence]\nretention_days = 0\n", r"\[evidence\] retention_days: 0 is not a positive"),
        ('[[evidence.sentry]]\nkey = "k"\ntenant = "acme"\n', r"number 1: service: None is not"),
        (
            '[[evidence.sentry]]\nkey = "k"\ntenant = "a"\nservice = "s"\nproject = 4\n',
            r"number 1: unknown member 'project'",
        ),
        (
            '[[evidence.sentry]]\nkey = "k"\ntenant = "a"\nservice = "s"\n'
            '[[evidence.sentry]]\nkey = "k"\ntenant = "b"\nservice = "t"\n',
            r"number 2: the key is already given to another service",
        ),
    ],
)
def test_bad_evidence_settings_say_where(tmp_path: Path, text: str, problem: str) -> None:
    write_toml(tmp_path, text)
    with pytest.raises(SettingsError, match=rf"canopy\.toml: .*{problem}"):
        load_settings(environ={}, cwd=tmp_path)
