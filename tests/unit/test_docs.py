"""The published documentation is generated from the code and kept in step with it."""

import subprocess
import sys
from pathlib import Path

from deploy import docs
from shared.settings import PROJECT_ROOT


def test_the_committed_error_catalogue_is_current() -> None:
    committed = (PROJECT_ROOT / "docs" / "error-codes.md").read_text(encoding="utf-8")
    assert committed == docs.error_catalogue(), "run `make docs`"


def test_the_registry_asyncapi_document_describes_the_submission_and_its_records() -> None:
    spec = docs.asyncapi("registry").to_jsonable()
    text = str(spec)
    assert spec["asyncapi"].startswith("3.")
    assert "registry.sdp" in text
    for field in ("upt_id", "as_of", "parts", "register_number", "custody_status"):
        assert field in text
    assert "Must equal the sending UPT's broker user." in text  # field descriptions reach the document


def test_the_dedup_asyncapi_document_needs_no_gallery_key_and_shows_the_adjudication_command() -> None:
    text = str(docs.asyncapi("dedup").to_jsonable())
    assert "dedup.ektp" in text
    assert "dedup.commands" in text
    assert "Why, for the audit trail." in text


def test_every_dedup_finding_and_population_code_is_documented() -> None:
    from services.dedup.domain.linkage import NIK_CODE_REASONS, NIK_CODES
    from services.dedup.domain.verdicts import FINDINGS, Finding

    catalogue = docs.error_catalogue()
    assert set(Finding) <= FINDINGS.keys()
    assert set(NIK_CODES) == NIK_CODE_REASONS.keys()
    for name in [*FINDINGS, *NIK_CODES]:
        assert f"| `{name}` |" in catalogue


def test_the_consolidator_asyncapi_document_shows_its_queues_and_the_run_command() -> None:
    text = str(docs.asyncapi("consolidator").to_jsonable())
    for queue in (
        "consolidator.sdp",
        "consolidator.ektp",
        "consolidator.submissions",
        "consolidator.commands",
    ):
        assert queue in text
    assert "accept_shrunken" in text
    assert "The person running it (name or id)." in text


def test_every_consolidation_code_is_documented() -> None:
    from services.consolidator.domain.codes import CODES

    catalogue = docs.error_catalogue()
    for problem in CODES:
        assert f"| `{problem.code}` |" in catalogue


def test_the_registry_asyncapi_document_describes_the_receipts_it_sends_back() -> None:
    spec = docs.asyncapi("registry").to_jsonable()
    sent = {name: op for name, op in spec["operations"].items() if op["action"] == "send"}
    titles = " ".join(sent)
    assert "SubmissionReceipt" in titles
    assert "EktpReceipt" in titles
    text = str(spec)
    assert "docs/error-codes.md" in text  # where every code of a receipt is
    assert "rejected" in str(spec["components"]["schemas"])  # the receipt's statuses are in its schema


def test_the_generated_documents_are_written_in_a_stable_order(tmp_path: Path) -> None:

    for n in (1, 2):
        subprocess.run(
            [sys.executable, "-m", "deploy.docs", "--out", str(tmp_path / str(n))],
            check=True,
            capture_output=True,
        )
    for service in docs.SERVICES:
        first = (tmp_path / "1" / "asyncapi" / f"{service}.yaml").read_text()
        assert first == (tmp_path / "2" / "asyncapi" / f"{service}.yaml").read_text()
