"""Configuration: every problem reported at once with key path and hint; secrets never from plain TOML."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from integration.cli import app
from integration.config import load_config, parse_config
from integration.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

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
jobs = [["a"]]
"""


def test_example_config_is_valid() -> None:
    """The shipped example decodes with the documented defaults filled in."""
    config = load_config(EXAMPLES / "integration.toml")
    assert config.ndrive.workstations == ["WORKHERB0001", "WORKHERB0002"]
    assert config.retry.attempts == 6
    assert "PIPEHERB0001" in config.pipelines


def test_broken_config_lists_every_problem_with_path_and_hint() -> None:
    """The broken example reports all of its problems, each with the dotted key path."""
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLES / "broken.toml")
    problems = "\n".join(caught.value.problems)
    for expected in (
        "ndrive.settel_s: unknown key (did you mean 'settle_s'?)",
        "ndrive.workstations: expected list[str], found str",
        "storage.database: missing",
        "ars.request_timeout_s: expected float, found str 'thirty'",
        "ndrive.root: 'relative/path' is not an absolute path",
        "ars.base_url: 'ars.example.org' is not an http(s) URL",
        "ars.client_secret: a plain-text secret",
        "concurrency.assets: must be > 0",
        "pipelines.PIPEHERB0001.jobs",
    ):
        assert expected in problems
    assert len(caught.value.problems) == 9


def test_wrong_types_in_nested_tables_are_reported() -> None:
    """A wrong type inside a pipeline table names the full path."""
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL.replace('jobs = [["a"]]', "jobs = 3"))
    assert caught.value.problems == ["pipelines.p.jobs: expected list[list[str]], found int 3"]


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
    with_file = parse_config(
        MINIMAL.replace('client_id = "c"', f'client_id = "c"\nclient_secret_file = "{secret_file}"')
    )
    assert with_file.ars.resolve_secret() == "from-file"


def test_plaintext_secret_only_when_explicitly_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """ars.client_secret in the TOML is refused unless allow_plaintext_secret = true."""
    monkeypatch.delenv("INTEGRATION_ARS_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError):
        parse_config(MINIMAL.replace('client_id = "c"', 'client_id = "c"\nclient_secret = "x"'))
    allowed = parse_config(
        MINIMAL.replace('client_id = "c"', 'client_id = "c"\nclient_secret = "x"\nallow_plaintext_secret = true')
    )
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
