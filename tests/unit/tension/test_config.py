"""The tension configuration is validated at start-up; errors name the field."""

from __future__ import annotations

import pytest
import yaml

from services.tension.config import DEFAULT_CONFIG_FILE, TensionConfigError, load_config


def write(tmp_path, mutate) -> str:
    raw = yaml.safe_load(DEFAULT_CONFIG_FILE.read_text())
    mutate(raw)
    path = tmp_path / "tension.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_packaged_configuration_loads():
    config = load_config()
    assert [w.label for w in config.windows] == ["24h/1h", "7d/1d"]
    assert config.grace == 7200 and config.cool_down == 6 * 3600


def test_an_unknown_category_is_named(tmp_path):
    path = write(tmp_path, lambda raw: raw["weights"].update(hate_crimes=3))
    with pytest.raises(TensionConfigError, match=r"weights\.hate_crimes"):
        load_config(path)


def test_an_exit_threshold_above_enter_is_rejected(tmp_path):
    path = write(tmp_path, lambda raw: raw["levels"]["high"].update(exit=9))
    with pytest.raises(TensionConfigError, match=r"levels\.high.*exit .* must not be above enter"):
        load_config(path)


def test_a_window_that_is_not_whole_hours_is_rejected(tmp_path):
    path = write(tmp_path, lambda raw: raw["windows"][0].update(step="90m"))
    with pytest.raises(TensionConfigError, match=r"windows\.0.*whole number of hours"):
        load_config(path)


def test_a_bad_duration_is_named(tmp_path):
    path = write(tmp_path, lambda raw: raw.update(grace="two hours"))
    with pytest.raises(TensionConfigError, match=r"grace: .*not a duration"):
        load_config(path)


def test_a_missing_file_says_which_setting_to_change(tmp_path):
    with pytest.raises(TensionConfigError, match="MUSTER_TENSION_CONFIG_FILE"):
        load_config(tmp_path / "nope.yaml")
