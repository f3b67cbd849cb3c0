"""Logs never carry a full NIK or a biometric template."""

import json
import logging

import pytest

from shared.logging import configure_logging, mask_niks


def test_nik_shaped_numbers_are_masked_wherever_they_appear() -> None:
    assert mask_niks("nik=3273011503850007 ok") == "nik=3273********0007 ok"
    assert mask_niks("a 12345678901234567 b") == "a 12345678901234567 b"  # 17 digits: not a NIK


def test_log_lines_are_json_with_the_service_and_no_personal_data(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("registry", json=True)
    log = logging.getLogger("simpul.test")
    log.warning(
        "checking 3273011503850007",
        extra={
            "record": {"nik": "3273011503850007", "templates": [0.1, 0.2]},
            "face_embedding": [0.3] * 8,
            "records": 3,
        },
    )
    try:
        raise ValueError("bad nik 3273011503850007")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    first, second = lines
    assert first["service"] == "registry"
    assert first["level"] == "warning"
    assert first["event"] == "checking 3273********0007"
    assert first["record"] == {"nik": "3273********0007", "templates": "[dropped]"}
    assert first["face_embedding"] == "[dropped]"
    assert first["records"] == 3  # a count under a sensitive name is kept
    assert "3273011503850007" not in second["exception"]
    assert "3273********0007" in second["exception"]
