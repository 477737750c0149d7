"""Configuration: every problem reported at once with key path and hint; rules live on the Structs' annotations."""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
import tomli_w
from typer.testing import CliRunner

from integration.cli import app
from integration.config import Config, config_warnings, load_config, parse_config
from integration.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

MINIMAL = """
[ndrive]
root = "/n"
workstations = ["ws"]
[storage]
root = "/s"
database = "/s/t.sqlite3"
[ars]
base_url = "http://127.0.0.1:1"
token_url = "http://127.0.0.1:1/token"
client_id = "c"
[pipelines.p]
jobs = [["barcode"]]
"""


def _with(**sections: dict[str, Any]) -> str:
    """MINIMAL with the keys of ``sections`` set (or added), as TOML."""
    data: dict[str, Any] = tomllib.loads(MINIMAL)
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return tomli_w.dumps(data)


def _problems(text: str) -> list[str]:
    """The problems ``parse_config`` reports for ``text`` (fails the test if it reports none)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


def _bare(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is Annotated else tp


def _fields(cls: type[msgspec.Struct], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, annotation) of ``cls`` and its nested tables, read from the Structs themselves."""
    for field in msgspec.structs.fields(cls):
        bare = _bare(field.type)
        value_type = _bare(typing.get_args(bare)[1]) if typing.get_origin(bare) is dict else None
        if isinstance(value_type, type) and issubclass(value_type, msgspec.Struct):  # [pipelines.<name>]
            yield from _fields(value_type, f"{prefix}{field.name}.<name>.")
        elif isinstance(bare, type) and issubclass(bare, msgspec.Struct):
            yield from _fields(bare, f"{prefix}{field.name}.")
        else:
            yield prefix + field.name, field.type


#: Paths of tables keyed by name (``jobs.<name>.cpus``) are tried on one concrete entry, the barcode job.
NUMERIC_PATHS = [path.replace("<name>", "barcode") for path, tp in _fields(Config) if _bare(tp) in (int, float)]


def _with_values(values: dict[str, Any]) -> str:
    """MINIMAL with each dotted path of ``values`` set; a ``jobs.barcode.*`` path gets its required module."""
    data: dict[str, Any] = tomllib.loads(MINIMAL)
    for path, value in values.items():
        *tables, key = path.split(".")
        table = data
        for name in tables:
            table = table.setdefault(name, {})
        if tables[:1] == ["jobs"]:
            table.setdefault("module", tables[1])
        table[key] = value
    return tomli_w.dumps(data)


def test_example_config_is_valid() -> None:
    """The shipped example decodes with the documented defaults filled in."""
    config = load_config(EXAMPLES / "integration.toml")
    assert config.ndrive.workstations == ["WORKHERB0001", "WORKHERB0002"]
    assert config.retry.attempts == 6
    assert config.lanes.probe_initial_s == 5.0
    assert "PIPEHERB0001" in config.pipelines


def test_new_keys_have_their_defaults() -> None:
    """The keys added for lanes, dedup, CRC retries, disk-full and the daemon's loops default as documented."""
    config = parse_config(MINIMAL)
    assert (config.ndrive.io_timeout_s, config.ndrive.copy_timeout_s) == (60.0, 1800.0)
    assert (config.ars.create_dedup_window_s, config.ars.crc_mismatch_retries) == (330.0, 5)
    assert config.ars.disk_full_room_mb == 2000
    assert config.ars.max_wait_s == 86400.0
    assert (config.lanes.probe_initial_s, config.lanes.probe_max_s, config.lanes.needs_human_after) == (5.0, 300.0, 10)
    assert (config.daemon.admin_poll_s, config.daemon.heartbeat_s) == (0.5, 10.0)
    assert config.daemon.restart_healthy_after_s == 60.0
    assert (config.daemon.log_format, config.daemon.log_level) == ("auto", "info")


def test_every_key_is_documented() -> None:
    """Each key of every table appears in docs/configuration.md."""
    docs = DOCS.read_text(encoding="utf-8")
    missing = [path for path, _ in _fields(Config) if f"`{path.rsplit('.', 1)[-1]}`" not in docs]
    assert not missing


def test_broken_config_lists_every_problem_with_path_and_hint() -> None:
    """The broken example reports all of its problems, each with the dotted key path."""
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLES / "broken.toml")
    problems = "\n".join(caught.value.problems)
    for expected in (
        "ndrive.settel_s: unknown key (did you mean 'settle_s'?)",
        "ndrive.workstations: expected list[str], found str",
        "storage.database: missing (fix: an absolute path of the SQLite file",
        "ars.request_timeout_s: expected float, found str 'thirty'",
        "ars.probe_interval_s: unknown key",
        "ndrive.root: 'relative/path' is not an absolute path",
        "ars.base_url: 'ars.example.org' is not an http(s) URL",
        "ars.client_secret: a plain-text secret",
        "concurrency.assets: must be > 0, found 0",
        "retry.jitter_s: must be >= 0, found -1.0",
        "lanes.probe_max_s: must be >= probe_initial_s (5.0), found 1.0",
        "daemon.log_level: must be one of 'debug', 'info', 'warning', 'error', found 'verbose'",
        "pipelines.PIPEHERB0001.jobs: must not be empty",
    ):
        assert expected in problems
    assert len(caught.value.problems) == 13


def test_all_problems_of_all_kinds_come_in_one_error() -> None:
    """Unknown, missing, mistyped, constrained and cross-field problems of several tables arrive in one ConfigError."""
    text = _with(
        ndrive={"workstations": ["ws", "ws"], "settle_s": -1},
        ars={"base_url": "https://h/ars/api", "timeout_s": 1, "client_id": 3},
        retry={"initial_s": 5.0, "max_s": 1.0},
        daemon={"log_format": "xml"},
    ).replace('database = "/s/t.sqlite3"', "")
    problems = _problems(text)
    assert [problem.split(":", 1)[0] for problem in problems] == [
        "ndrive.settle_s",
        "ndrive.workstations",
        "storage.database",
        "ars.timeout_s",
        "ars.client_id",
        "ars.base_url",
        "retry.max_s",
        "daemon.log_format",
    ]


def test_wrong_types_in_nested_tables_are_reported() -> None:
    """A wrong type inside a pipeline table or a list names the full path, down to the list index."""
    assert _problems(MINIMAL.replace('jobs = [["barcode"]]', "jobs = 3")) == [
        "pipelines.p.jobs: expected list[list[str]], found int 3"
        ' (fix: at least one job group, e.g. jobs = [["asset_loader"], ["barcode"]])'
    ]
    assert _problems(MINIMAL.replace('jobs = [["barcode"]]', 'jobs = [["barcode"], []]')) == [
        "pipelines.p.jobs[1]: must not be empty (fix: each job group lists at least one job)"
    ]
    assert _problems(MINIMAL.replace('["ws"]', '["ws", 7]')) == ["ndrive.workstations[1]: expected str, found int 7"]


def test_unknown_log_level_is_a_problem_listing_the_allowed_values() -> None:
    """An unknown daemon.log_level is refused at load time with the allowed values, not a KeyError in `run`."""
    assert _problems(_with(daemon={"log_level": "verbose"})) == [
        "daemon.log_level: must be one of 'debug', 'info', 'warning', 'error', found 'verbose'"
    ]


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("retry", "jitter_s", -0.5, "must be >= 0, found -0.5"),
        ("ars", "token_refresh_margin_s", -1, "must be >= 0, found -1"),
        ("ars", "allocation_headroom_fraction", -0.1, "must be >= 0, found -0.1"),
        ("ars", "allocation_headroom_fraction", 1.5, "must be <= 1, found 1.5"),
        ("ars", "request_timeout_s", 0, "must be > 0, found 0 (0 never means 'forever' here)"),
        ("ars", "upload_timeout_s", float("inf"), "must be a finite number, found inf"),
    ],
)
def test_negative_jitter_fraction_and_margin_are_reported(section: str, key: str, value: float, message: str) -> None:
    """Jitter, margins and fractions below 0 (and a timeout of 0 or inf) are refused, the constraint said in words."""
    assert _problems(_with(**{section: {key: value}})) == [f"{section}.{key}: {message}"]


@pytest.mark.parametrize("path", NUMERIC_PATHS)
def test_every_numeric_field_refuses_a_negative_value_from_its_annotation(path: str) -> None:
    """Each int/float field, found by walking the Structs, refuses -1 through its own annotated constraint."""
    problems = _problems(_with_values({path: -1}))
    assert problems == [next(problem for problem in problems if problem.startswith(f"{path}: must be >"))]


def test_all_numeric_fields_negative_at_once_are_all_reported() -> None:
    """A config with every numeric field negative yields one problem per field, in one ConfigError."""
    problems = _problems(_with_values(dict.fromkeys(NUMERIC_PATHS, -1)))
    assert [problem.split(":", 1)[0] for problem in problems] == NUMERIC_PATHS


def test_required_keys_carry_their_hint_from_the_annotation() -> None:
    """A missing required key's fix hint is the one in its field's Meta, not from a side table."""
    annotation = dict(_fields(Config))["storage.database"]
    hint = next(meta for meta in typing.get_args(annotation)[1:] if meta.extra and "hint" in meta.extra).extra["hint"]
    assert _problems(MINIMAL.replace('database = "/s/t.sqlite3"', "")) == [f"storage.database: missing (fix: {hint})"]


def test_duplicate_workstations_are_reported() -> None:
    """A workstation listed twice is a problem on ndrive.workstations."""
    assert _problems(_with(ndrive={"workstations": ["ws", "ws2", "ws"]}))[0].startswith(
        "ndrive.workstations: 'ws' is listed more than once"
    )


@pytest.mark.parametrize("suffix", ["/ars/api", "/ars/api/", "/ars", "/ars/", "/file_proxy/api", "/file_proxy/api/"])
def test_base_url_with_an_api_path_is_reported(suffix: str) -> None:
    """ars.base_url ending in an API root is refused with the hint to give the ARS host only."""
    problems = _problems(_with(ars={"base_url": f"https://biovault.dassco.dk{suffix}"}))
    assert len(problems) == 1
    assert problems[0].startswith("ars.base_url: ")
    assert problems[0].endswith("(fix: the ARS host only, e.g. https://biovault.dassco.dk)")


@pytest.mark.parametrize("base_url", ["https://biovault.dassco.dk", "https://biovault.dassco.dk/", "http://h/mars"])
def test_base_url_of_a_host_is_accepted(base_url: str) -> None:
    """A host (with or without a trailing slash, or another path) is a valid ars.base_url."""
    assert parse_config(_with(ars={"base_url": base_url})).ars.base_url == base_url


@pytest.mark.parametrize(
    ("section", "initial", "maximum"),
    [
        ("ars", "sync_poll_initial_s", "sync_poll_max_s"),
        ("lanes", "probe_initial_s", "probe_max_s"),
        ("retry", "initial_s", "max_s"),
    ],
)
def test_back_off_maximum_below_its_start_is_reported(section: str, initial: str, maximum: str) -> None:
    """A back-off whose maximum is below its initial interval is a problem on the maximum."""
    assert _problems(_with(**{section: {initial: 10.0, maximum: 2.0}})) == [
        f"{section}.{maximum}: must be >= {initial} (10.0), found 2.0"
    ]
    parse_config(_with(**{section: {initial: 2.0, maximum: 2.0}}))


def test_relative_paths_are_reported() -> None:
    """Relative storage paths and a relative secret file are refused."""
    problems = _problems(_with(storage={"root": "s"}, ars={"client_secret_file": "secret"}))
    assert problems[0].startswith("storage.root: 's' is not an absolute path")
    assert problems[1].startswith("ars.client_secret_file: 'secret' is not an absolute path or empty")


def test_removed_probe_interval_is_an_unknown_key() -> None:
    """ars.probe_interval_s no longer exists: [lanes] replaces it."""
    assert _problems(_with(ars={"probe_interval_s": 5.0})) == ["ars.probe_interval_s: unknown key"]


def test_missing_ndrive_root_is_a_warning_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing N-Drive root loads fine and is reported by config_warnings only."""
    monkeypatch.setenv("INTEGRATION_ARS_CLIENT_SECRET", "s")
    config = parse_config(_with(ndrive={"root": str(tmp_path / "absent")}))
    assert config_warnings(config) == [f"ndrive.root: {str(tmp_path / 'absent')!r} is not a directory (not mounted?)"]


def test_missing_workstation_folder_and_unreadable_secret_are_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing workstation folder, a missing or empty secret file and an unset secret variable are warnings."""
    (tmp_path / "ws").mkdir()
    root = {"root": str(tmp_path), "workstations": ["ws", "ws2"]}
    config = parse_config(_with(ndrive=root, ars={"client_secret_file": str(tmp_path / "nope")}))
    assert [warning.split(":", 1)[0] for warning in config_warnings(config)] == [
        "ndrive.workstations",
        "ars.client_secret_file",
    ]
    assert "ws2" in config_warnings(config)[0]
    (tmp_path / "empty").write_text("\n")
    config = parse_config(_with(ndrive=root, ars={"client_secret_file": str(tmp_path / "empty")}))
    assert config_warnings(config)[1].endswith("is empty")
    monkeypatch.delenv("INTEGRATION_ARS_CLIENT_SECRET", raising=False)
    config = parse_config(_with(ndrive={"root": str(tmp_path)}))
    assert config_warnings(config) == [
        "ars.client_secret_env: the environment variable 'INTEGRATION_ARS_CLIENT_SECRET' is not set here;"
        " `integration run` needs it (or set ars.client_secret_file)"
    ]


def test_secret_comes_from_env_or_file_not_plain_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret is read from the env var or file; a missing secret is a clear ConfigError."""
    config = parse_config(MINIMAL)
    monkeypatch.delenv("INTEGRATION_ARS_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="INTEGRATION_ARS_CLIENT_SECRET"):
        config.ars.resolve_secret()
    monkeypatch.setenv("INTEGRATION_ARS_CLIENT_SECRET", "from-env")
    assert config.ars.resolve_secret() == "from-env"
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    with_file = parse_config(_with(ars={"client_secret_file": str(secret_file)}))
    assert with_file.ars.resolve_secret() == "from-file"


def test_secret_file_is_reread_on_every_call(tmp_path: Path) -> None:
    """A secret file is re-read by each resolve_secret(), so a corrected secret needs no restart."""
    secret_file = tmp_path / "secret"
    secret_file.write_text("old")
    ars = parse_config(_with(ars={"client_secret_file": str(secret_file)})).ars
    assert ars.resolve_secret() == "old"
    secret_file.write_text("new")
    assert ars.resolve_secret() == "new"
    assert ars.secret_rereadable
    assert ars.secret_source() == f"the file {secret_file}"


def test_secret_source_names_the_environment_variable_or_the_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """secret_source() says where the secret comes from; only a file is re-readable."""
    monkeypatch.setenv("INTEGRATION_ARS_CLIENT_SECRET", "from-env")
    ars = parse_config(MINIMAL).ars
    assert (ars.secret_source(), ars.secret_rereadable) == (
        "the environment variable INTEGRATION_ARS_CLIENT_SECRET",
        False,
    )
    monkeypatch.delenv("INTEGRATION_ARS_CLIENT_SECRET")
    plain = parse_config(_with(ars={"client_secret": "x", "allow_plaintext_secret": True})).ars
    assert (plain.secret_source(), plain.secret_rereadable) == ("the configuration file (plain text)", False)


def test_plaintext_secret_only_when_explicitly_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """ars.client_secret in the TOML is refused unless allow_plaintext_secret = true."""
    monkeypatch.delenv("INTEGRATION_ARS_CLIENT_SECRET", raising=False)
    assert _problems(_with(ars={"client_secret": "x"}))[0].startswith("ars.client_secret: a plain-text secret")
    allowed = parse_config(_with(ars={"client_secret": "x", "allow_plaintext_secret": True}))
    assert allowed.ars.resolve_secret() == "x"


def test_check_config_command_exit_codes() -> None:
    """`integration check-config` exits 0 for the example and 2, listing problems, for the broken one."""
    runner = CliRunner()
    ok = runner.invoke(app, ["check-config", str(EXAMPLES / "integration.toml")])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    bad = runner.invoke(app, ["check-config", str(EXAMPLES / "broken.toml")])
    assert bad.exit_code == 2
    assert "storage.database: missing" in bad.output
    invalid_toml = runner.invoke(app, ["check-config", str(EXAMPLES / "does-not-exist.toml")])
    assert invalid_toml.exit_code == 2
    assert "cannot read config file" in invalid_toml.output


def test_check_config_prints_warnings_and_still_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config with only warnings (missing N-Drive root) prints `warning:` lines and exits 0."""
    monkeypatch.setenv("INTEGRATION_ARS_CLIENT_SECRET", "s")
    path = tmp_path / "config.toml"
    path.write_text(_with(ndrive={"root": str(tmp_path / "absent")}))
    result = CliRunner().invoke(app, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert f"warning: ndrive.root: {str(tmp_path / 'absent')!r} is not a directory" in result.output
    assert "OK" in result.output


def test_the_seeds_pipelines_use_the_default_jobs() -> None:
    config = load_config(EXAMPLES / "integration.toml")
    assert config.pipelines["PIPEHERB0001"].jobs[1] == ["barcode", "ocr"]
    used = {name for pipeline in config.pipelines.values() for group in pipeline.jobs for name in group}
    assert used <= set(config.jobs)
    assert config.jobs["crop_derivatives"].module == "crop_derivatives"
    assert config.executor.kind == "local"


def test_a_pipeline_naming_an_unconfigured_job_is_reported() -> None:
    problems = _problems(MINIMAL.replace('jobs = [["barcode"]]', 'jobs = [["barcode", "ocrr"]]'))
    assert len(problems) == 1
    assert problems[0].startswith("pipelines: ")
    assert "job 'ocrr' is not configured" in problems[0]


def test_a_job_asking_more_than_the_executor_gives_is_reported() -> None:
    text = _with_values({"jobs.barcode.memory_mb": 64000, "executor.max_memory_mb": 16000})
    assert _problems(text) == ["jobs: barcode: memory_mb = 64000 is more than executor.max_memory_mb = 16000"]


def test_a_job_whose_watchdog_fires_before_its_time_limit_is_reported() -> None:
    text = _with_values({"jobs.barcode.time_limit_s": 900, "jobs.barcode.timeout_s": 600})
    assert _problems(text) == ["jobs.barcode.timeout_s: must be >= time_limit_s (900.0), found 600.0"]


def test_an_unknown_module_is_reported_with_the_allowed_ones() -> None:
    problems = _problems(_with_values({"jobs.barcode.module": "barcodes"}))
    assert len(problems) == 1
    assert problems[0].startswith("jobs.barcode.module: must be one of 'asset_loader', 'barcode'")


def test_job_names_are_restricted_and_listed_once_per_pipeline() -> None:
    twice = _problems(MINIMAL.replace('jobs = [["barcode"]]', 'jobs = [["barcode"], ["ocr", "barcode"]]'))
    assert len(twice) == 1
    assert twice[0].startswith("pipelines.p.jobs: 'barcode' is listed more than once")
    spaced = _problems(MINIMAL.replace('jobs = [["barcode"]]', 'jobs = [["my ocr"]]'))
    assert len(spaced) == 1
    assert spaced[0].startswith("pipelines.p.jobs[0][0]: ")


def test_cross_table_checks_wait_for_the_rest_to_be_right() -> None:
    """With another problem in the file, the job/executor comparison is not made on half-read tables (it is
    reported once the rest is right)."""
    text = _with_values({"jobs.barcode.memory_mb": 64000, "executor.max_memory_mb": 16000, "retry.attempts": -1})
    assert [problem.split(":", 1)[0] for problem in _problems(text)] == ["retry.attempts"]
