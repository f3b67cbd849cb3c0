"""`make docs`: the AsyncAPI document of each service (from its contracts) and the error-code catalogue."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from typing import Any, cast

import yaml
from faststream import FastStream

from shared.settings import PROJECT_ROOT

SERVICES = ("registry", "dedup", "consolidator", "monitor")


def build(service: str) -> FastStream:
    """A service's app as it would run, built without connecting to anything."""
    build_app = importlib.import_module(f"services.{service}.app").build_app
    if service == "dedup":  # needs no gallery: a throwaway key, never used
        from services.dedup.gallery import LAYOUT
        from services.dedup.vault import Vault

        return cast(FastStream, build_app(vault=Vault(os.urandom(32), LAYOUT)))
    return cast(FastStream, build_app())


def asyncapi(service: str) -> Any:
    """Built from the app's subscribers and the pydantic contracts; nothing connects."""
    return build(service).schema.to_specification()


def error_catalogue() -> str:
    from services.consolidator.domain import codes as consolidation_codes
    from services.dedup.domain.linkage import NIK_CODE_REASONS
    from services.dedup.domain.verdicts import FINDINGS
    from services.registry.domain import codes  # the registry is where senders meet these codes

    lines = [
        "# Error and warning codes",
        "",
        "Every receipt lists each refused record with one of these codes, and every dead-lettered message",
        "carries one in its `x-dead-reason` header. Codes are stable; reasons are given in Bahasa Indonesia",
        "and English. Warnings do not refuse a record.",
        "",
        "| code | kind | alasan (Bahasa Indonesia) | reason (English) |",
        "| --- | --- | --- | --- |",
    ]
    for code, scope, severity, reason_id, reason_en in codes.catalogue_rows():
        kind = f"{scope} (warning)" if severity == "warning" else scope
        lines.append(f"| `{code}` | {kind} | {reason_id} | {reason_en} |")
    lines += [
        "",
        "## Dedup verdicts",
        "",
        "Each e-KTP capture sent for dedup ends with one of these findings (`finding` in",
        "`dedup.verdict.ektp`), which sets its status.",
        "",
        "| finding | status | alasan (Bahasa Indonesia) | reason (English) |",
        "| --- | --- | --- | --- |",
        *(f"| `{f}` | {st} | {r_id} | {r_en} |" for f, (st, r_id, r_en) in FINDINGS.items()),
        "",
        "## Inmates against the population record",
        "",
        "Each accepted inmate record with a NIK is checked against the population record",
        "(`population_checks` in `dedup.verdict.sdp`); a NIK claimed by two people is flagged on both.",
        "",
        "| code | alasan (Bahasa Indonesia) | reason (English) |",
        "| --- | --- | --- |",
        *(f"| `{c}` | {r_id} | {r_en} |" for c, (r_id, r_en) in NIK_CODE_REASONS.items()),
        "| `NIK_CLAIMED_BY_ANOTHER_PERSON` | NIK yang sama dipakai orang lain (di UPT ini atau UPT lain). "
        "| The same NIK is claimed by another person (in this or another UPT). |",
        "",
        "## Consolidation",
        "",
        "A refused or failed consolidation run carries one of these in `code` of `consolidation.run.failed`;",
        "the warnings mark held snapshots and e-KTP histories the centre received out of order.",
        "",
        "| code | kind | alasan (Bahasa Indonesia) | reason (English) |",
        "| --- | --- | --- | --- |",
        *(
            f"| `{p.code}` | {'warning' if p.severity == 'warning' else 'error'} | {p.reason_id} | {p.reason_en} |"
            for p in consolidation_codes.CODES
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs")
    args = parser.parse_args()
    (args.out / "asyncapi").mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        path = args.out / "asyncapi" / f"{service}.yaml"
        # Sorted: the generator's own order of channels and operations varies from run to run.
        document = asyncapi(service).to_jsonable()
        path.write_text(yaml.safe_dump(document, sort_keys=True, allow_unicode=True), encoding="utf-8")
        print(f"wrote {path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}")
    catalogue = args.out / "error-codes.md"
    catalogue.write_text(error_catalogue(), encoding="utf-8")
    print(
        f"wrote {catalogue.relative_to(PROJECT_ROOT) if catalogue.is_relative_to(PROJECT_ROOT) else catalogue}"
    )


if __name__ == "__main__":
    main()
