"""The casework configuration is read by the one YAML loader (services/shared/yamlfile.py):
its errors in the same one-line style as every configuration file's."""

from __future__ import annotations

import pytest
import yaml

from services.casework.config import DEFAULT_CONFIG_FILE, CaseworkConfigError, load_config
from services.shared.yamlfile import ConfigFileError


def write(tmp_path, mutate):
    raw = yaml.safe_load(DEFAULT_CONFIG_FILE.read_text())
    mutate(raw)
    path = tmp_path / "casework.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_bad_field_is_named_with_the_file_on_one_line(tmp_path):
    path = write(tmp_path, lambda raw: raw["asb_case_review"].update(window="half a year"))
    with pytest.raises(CaseworkConfigError, match=rf"^{path}: field asb_case_review\.window: .*") as raised:
        load_config(path)
    assert "\n" not in str(raised.value)


def test_a_missing_file_says_which_setting_to_change_and_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigFileError, match="casework config not found: .* \\(set MUSTER_CASEWORK_CONFIG_FILE\\)"):
        load_config(tmp_path / "nope.yaml")


def test_a_duration_is_written_as_in_every_configuration_file(tmp_path):
    path = write(tmp_path, lambda raw: raw["asb_case_review"].update(qualify_within="4w"))
    assert load_config(path).asb_case_review.qualify_within == 28 * 24 * 3600
    bad = write(tmp_path, lambda raw: raw["asb_case_review"].update(qualify_within="1500ms"))
    with pytest.raises(CaseworkConfigError, match="qualify_within: .*not a whole number of seconds"):
        load_config(bad)
