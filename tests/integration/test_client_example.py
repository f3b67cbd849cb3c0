"""docs/examples/unit_client.py, the regional client written with pika from docs/clients.md, against the real
broker and registry: a UPT's part and a Dukcapil office's packet are each answered with their receipt."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.registry.app import build_app
from services.registry.config import Settings
from shared.contracts import WIB
from shared.settings import PROJECT_ROOT
from tests.builders import inmate, packets, submission
from tests.conftest import Installation
from tests.integration.helpers import running

pytestmark = pytest.mark.integration
EXAMPLE = PROJECT_ROOT / "docs" / "examples" / "unit_client.py"


async def run_example(url: str, unit: str, body: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(EXAMPLE), "--url", url, "--unit", unit, "--timeout", "30", str(body)]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=120)


async def test_the_pika_client_sends_a_part_and_a_packet_and_gets_their_receipts(
    installation: Installation, tmp_path: Path
) -> None:
    inst = installation
    part: dict[str, Any] = submission(
        [inmate(), inmate(nik="12")], upt_id="upt-3273-1", as_of=datetime.now(WIB).date()
    )
    packet = packets(1, seed=911)[0]
    (tmp_path / "part.json").write_text(json.dumps(part))
    (tmp_path / "packet.json").write_text(json.dumps(packet))
    settings = inst.settings("registry", Settings, retry_backoff_max=0.05)
    async with running(build_app(settings)):
        sdp = await run_example(inst.url_for("upt", "upt-3273-1"), "upt-3273-1", tmp_path / "part.json")
        ektp = await run_example(
            inst.url_for("dukcapil", "dukcapil-3273"), "dukcapil-3273", tmp_path / "packet.json"
        )
    assert sdp.returncode == 0, sdp.stderr
    receipt = json.loads(sdp.stdout)
    assert (receipt["in_reply_to"], receipt["status"], receipt["accepted"]) == (
        part["message_id"], "partially_accepted", 1,
    )  # fmt: skip
    assert receipt["rejected"][0]["index"] == 1  # the record with a two-digit NIK, with its code
    assert ektp.returncode == 0, ektp.stderr
    answer = json.loads(ektp.stdout)
    assert (answer["in_reply_to"], answer["status"]) == (packet["message_id"], "SENT_FOR_DEDUP")


async def test_the_broker_refuses_the_pika_client_another_units_routing_key(
    installation: Installation, tmp_path: Path
) -> None:
    part = submission([inmate()], upt_id="upt-1101-1")
    (tmp_path / "part.json").write_text(json.dumps(part))
    # upt-3273-1's user, sending as upt-1101-1: the broker's topic permission refuses it, and it is not retried
    result = await run_example(
        inst_url := installation.url_for("upt", "upt-3273-1"), "upt-1101-1", tmp_path / "part.json"
    )
    assert inst_url
    assert result.returncode != 0
    assert "ACCESS_REFUSED" in result.stderr
    assert "sending again" not in result.stderr
