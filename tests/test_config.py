"""Settings: one definition each, strict validation, lookup order, init/show/check."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from pwtop import config as cfg
from pwtop.cli import main
from pwtop.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_seed_defaults():
    s = cfg.Settings()
    assert (s.database.analyze_threshold, s.database.vacuum_threshold, s.database.cache_size,
            s.database.temp_store, s.database.synchronous) == (0.1, 0.3, 10000, "memory", "normal")
    assert (s.async_.max_pool_size, s.async_.task_queue_size, s.async_.rate_limit,
            s.async_.batch_size, s.async_.circuit_breaker_threshold) == (100, 1000, 1000, 50, 5)
    assert (s.realtime.max_connections, s.realtime.heartbeat_interval,
            s.realtime.message_queue_size, s.realtime.compression,
            s.realtime.buffer_size) == (1000, 30, 100, True, 65536)


def test_example_file_is_generated_and_parses_to_exactly_the_defaults():
    text = (ROOT / "config.example.toml").read_text()
    assert text == cfg.example_toml(), "regenerate: python -m pwtop config init --force config.example.toml"
    parsed = cfg.settings_from_dict(tomllib.loads(text), "example")
    assert parsed.to_toml_dict() == cfg.Settings().to_toml_dict()
    for name, _ in cfg.iter_settings():
        key = name.split(".", 1)[1]
        assert f"\n{key} = " in text, f"{name} is not documented in config.example.toml"


def test_configuration_reference_is_current():
    from pwtop.docs import configuration_reference

    assert (ROOT / "docs" / "configuration.md").read_text() == configuration_reference()


def test_values_are_loaded_with_their_source(tmp_path):
    path = write(tmp_path, '[database]\ncache_size = 2000\n[ui]\ninterval = 2\n')
    s = cfg.load_settings(path)
    assert s.database.cache_size == 2000 and s.ui.interval == 2.0
    assert isinstance(s.ui.interval, float)
    assert s.sources["database.cache_size"] == str(path)
    assert s.sources["database.vacuum_threshold"] == "default"


@pytest.mark.parametrize("text, expected", [
    ("[database]\ncache_sise = 1\n", "[database] unknown key 'cache_sise'"),
    ("[databse]\n", "unknown table [databse]"),
    ('[database]\ncache_size = "big"\n', "[database] cache_size: expected an integer, got 'big'"),
    ("[realtime]\ncompression = 1\n", "[realtime] compression: expected true or false"),
    ("[database]\nvacuum_threshold = 1.5\n", "vacuum_threshold: expected a number from 0.0 to 1.0"),
    ("[ui]\ninterval = 0\n", "[ui] interval: expected a number from 0.2 to 60.0, got 0"),
    ('[database]\ntemp_store = "ram"\n', "expected one of 'default', 'file', 'memory'"),
    ('[target]\nprobe_urls = "ws://x"\n', "probe_urls: expected an array of strings"),
    ("database = 3\n", "database must be a table"),
])
def test_bad_values_name_file_key_and_expectation(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        cfg.load_settings(path)
    assert str(path) in err.value.message
    assert expected in err.value.message


FLOAT_SETTINGS = [name for name, f in cfg.iter_settings()
                  if isinstance(f.default, float) and not isinstance(f.default, bool)]


@pytest.mark.parametrize("value", ["nan", "+nan", "-nan", "inf", "+inf", "-inf"])
@pytest.mark.parametrize("name", FLOAT_SETTINGS)
def test_every_float_setting_rejects_nan_and_infinities(tmp_path, capsys, name, value):
    """NaN compares false with both bounds, so a plain range check lets it through: an
    interval of NaN spun the TUI, a busy_timeout of NaN made optimize give up at once."""
    group, key = name.split(".")
    path = write(tmp_path, f"[{group}]\n{key} = {value}\n")
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"pwtop: {path}: [{group}] {key}: ")
    assert "expected a finite number" in err and "got " in err


def test_the_float_settings_are_many():
    """The parametrized test above covers every float setting, whichever they are."""
    assert {"ui.interval", "database.busy_timeout", "history.write_interval"} <= \
        set(FLOAT_SETTINGS)


def test_a_huge_integer_for_a_float_setting_is_one_line(tmp_path):
    # TOML integers are 64-bit, but tomllib reads any size; float() of 10**400 overflows.
    with pytest.raises(ConfigError) as err:
        cfg.settings_from_dict({"ui": {"interval": 10 ** 400}}, "c.toml")
    assert "[ui] interval: expected a finite number from 0.2 to 60.0" in err.value.message


def test_check_setting_gives_a_flag_the_bounds_of_its_setting():
    assert cfg.check_setting("ui.interval", 2, "--interval") == 2.0
    for bad in (0.01, 61.0, float("nan")):
        with pytest.raises(ConfigError) as err:
            cfg.check_setting("ui.interval", bad, "--interval")
        assert err.value.message.startswith("--interval: expected a ")
        assert "from 0.2 to 60.0" in err.value.message


def test_toml_syntax_error_gives_line_and_column(tmp_path):
    path = write(tmp_path, "[database]\ncache_size = = 3\n")
    with pytest.raises(ConfigError) as err:
        cfg.load_settings(path)
    assert "line 2" in err.value.message and "column" in err.value.message


@pytest.mark.parametrize("argv_extra", [["config", "check"], ["analyze"]])
def test_cli_bad_config_is_one_line_exit_2(tmp_path, capsys, argv_extra):
    path = write(tmp_path, "[database]\ncache_size = -1\n")
    assert main(["--config", str(path), *argv_extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err and "cache_size" in err


def test_missing_explicit_config(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert main(["config", "check", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "config file not found" in err and str(missing) in err
    assert not missing.exists()


def test_unreadable_config_is_a_directory(tmp_path, capsys):
    assert main(["config", "check", "--config", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_unreadable_config_bytes(tmp_path, capsys):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["config", "check", "--config", str(path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_lookup_order(tmp_path, xdg, monkeypatch):
    xdg_file = xdg.config / "pwtop" / "config.toml"
    xdg_file.parent.mkdir(parents=True)
    xdg_file.write_text("[ui]\ninterval = 3\n")
    assert cfg.load_settings().ui.interval == 3.0
    env_file = write(tmp_path, "[ui]\ninterval = 4\n")
    monkeypatch.setenv("PWTOP_CONFIG", str(env_file))
    assert cfg.load_settings().ui.interval == 4.0
    flag_file = tmp_path / "flag.toml"
    flag_file.write_text("[ui]\ninterval = 5\n")
    assert cfg.load_settings(flag_file).ui.interval == 5.0


def test_xdg_config_home_unset_falls_back_to_home(xdg, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert cfg.default_config_path() == xdg.home / ".config" / "pwtop" / "config.toml"
    (xdg.home / ".config" / "pwtop").mkdir(parents=True)
    cfg.default_config_path().write_text("[ui]\ninterval = 7\n")
    assert cfg.load_settings().ui.interval == 7.0


def test_relative_xdg_value_is_ignored(xdg, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert cfg.config_home() == xdg.home / ".config" / "pwtop"


def test_init_writes_example_and_refuses_overwrite(tmp_path, capsys):
    target = tmp_path / "new" / "pwtop.toml"
    assert main(["config", "init", str(target)]) == 0
    assert target.read_text() == cfg.example_toml()
    target.write_text("# mine\n")
    assert main(["config", "init", str(target)]) == 2
    assert "--force" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert main(["config", "init", str(target), "--force"]) == 0
    assert target.read_text() == cfg.example_toml()


def test_init_default_location(xdg):
    assert main(["config", "init"]) == 0
    assert (xdg.config / "pwtop" / "config.toml").exists()


def test_show_reports_sources_and_never_writes_flags(tmp_path, capsys):
    path = write(tmp_path, "[database]\ncache_size = 2000\n")
    before = path.read_bytes()
    assert main(["config", "show", "--json", "--config", str(path), "--db", "/x/app.db"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["database.cache_size"] == {"value": 2000, "source": str(path)}
    assert shown["target.database"] == {"value": "/x/app.db", "source": "command line"}
    assert shown["ui.interval"]["source"] == "default"
    assert path.read_bytes() == before


def test_global_flags_before_or_after_the_verb(tmp_path, capsys):
    assert main(["--db", "/a.db", "config", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["target.database"]["value"] == "/a.db"
    assert main(["config", "show", "--json", "--db", "/b.db"]) == 0
    assert json.loads(capsys.readouterr().out)["target.database"]["value"] == "/b.db"


def test_check_valid_file(tmp_path, capsys):
    path = write(tmp_path, "[ui]\ntheme = \"pwtop-light\"\n")
    assert main(["config", "check", "--config", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
