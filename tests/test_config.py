"""Config files: unknown keys and bad values are named with their line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.config import CloudConfig
from edge.cli import main as edge_main
from edge.config import EdgeConfig
from shared.config import ConfigError, load

GOOD = """\
device = "kitchen-1"
site = "canteen-001"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[outbox]
when_full = "reject_new"
"""


def test_a_good_config_loads(tmp_path: Path) -> None:
    p = tmp_path / "edge.toml"
    p.write_text(GOOD)
    cfg = load(p, EdgeConfig)
    assert cfg.mqtt.client_id == "kitchen-1" and cfg.outbox.when_full == "reject_new"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace('when_full = "reject_new"', 'when_ful = "reject_new"'),
            ":8: outbox.when_ful: unknown key",
        ),
        (GOOD.replace('"reject_new"', '"drop_newest"'), ":8: outbox.when_full: Input should be"),
        (GOOD.replace("mqtt://127.0.0.1:1883", "http://x"), ":5: mqtt.url: Value error, must look"),
        (GOOD.replace('device = "kitchen-1"', 'device = "a/b"'), ":1: device: String should"),
        (GOOD.replace('site = "canteen-001"\n', ""), "edge.toml: site: Field required"),
        (GOOD + "\n[sync]\nbatch_max_events = 0\n", ":11: sync.batch_max_events"),
        ("device = \n", "not valid TOML"),
    ],
)
def test_bad_configs_name_the_field_and_line(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "edge.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(p, EdgeConfig)
    assert expected in str(err.value), str(err.value)


def test_validate_command_exits_2_and_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "edge.toml"
    p.write_text(GOOD.replace("[outbox]", "[outbox]\nmax_events = -5"))
    result = CliRunner().invoke(edge_main, ["config", "validate", "--config", str(p)])
    assert result.exit_code == 2
    assert f"{p}:8: outbox.max_events" in result.output
    p.write_text(GOOD)
    result = CliRunner().invoke(edge_main, ["config", "validate", "--config", str(p)])
    assert result.exit_code == 0 and "OK" in result.output


def test_cloud_without_mqtt_uses_the_embedded_broker() -> None:
    cfg = CloudConfig.model_validate({"embedded_broker": {"port": 18999}})
    assert cfg.broker().url == "mqtt://127.0.0.1:18999" and cfg.broker().protocol == "3.1.1"


def test_every_config_field_has_a_description() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
            ann = field.annotation
            for sub in getattr(ann, "__args__", (ann,)):
                if isinstance(sub, type) and hasattr(sub, "model_fields"):
                    missing += walk(sub)
        return missing

    assert walk(EdgeConfig) == [] and walk(CloudConfig) == []


def test_password_comes_from_the_environment_or_a_credential_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cred = tmp_path / "mqtt_password"
    cred.write_text("s3cret\n")
    cfg = EdgeConfig.model_validate(
        {"device": "d", "site": "s", "mqtt": {"username": "d", "password_file": str(cred)}}
    )
    assert cfg.mqtt.secret() == "s3cret"
    monkeypatch.setenv("SHIAN_MQTT_PASSWORD", "from-env")
    assert cfg.mqtt.secret() == "from-env"
