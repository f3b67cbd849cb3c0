"""Detention limits per law and register, and the daily overstaying and expiry-notice decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

# Only tahanan (A registers) have a detention period; B registers serve sentences.
REGISTERS = ("A I", "A II", "A III", "A IV", "A V")
# Rutans send expiry notices 10 and 3 days before a period ends (registration standard, Form 5.36/5.37).
NOTICE_3_DAYS = 3
NOTICE_10_DAYS = 10

_TOP_FIELDS = frozenset({"version", "laws"})
_LAW_FIELDS = frozenset({"law", "valid_from", "valid_until", "verified", "source", "registers"})
_REGISTER_FIELDS = frozenset({"initial_days", "extension_days", "exceptional_days", "citation"})

RuleRow = tuple[str, str, str, date, date | None, int, int, int, str]


@dataclass(frozen=True)
class DetentionRule:
    """How long one register's detention may last under one law."""

    law: str
    version: str
    register: str
    valid_from: date
    valid_until: date | None  # exclusive; None while the law is in force
    initial_days: int
    extension_days: int
    exceptional_days: int
    citation: str
    verified: bool

    def applies_to(self, detention_start: date) -> bool:
        return self.valid_from <= detention_start and (
            self.valid_until is None or detention_start < self.valid_until
        )


@dataclass(frozen=True)
class DetentionFinding:
    """What a tahanan's detention needs on a day: overstaying, or a notice that it ends soon."""

    kind: Literal["overstaying", "notice_3", "notice_10"]
    authorised_until: date
    days_over: int  # days held past authorised_until; 0 for notices
    days_left: int  # days from the day to authorised_until; 0 when overstaying
    rule: DetentionRule


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"detention rules: {where}: {message}")


def _check_fields(where: str, value: Any, expected: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"must be a mapping, got {type(value).__name__}")
    missing = sorted(expected - value.keys())
    if missing:
        raise _fail(where, f"missing field(s) {', '.join(missing)}")
    unknown = sorted(str(k) for k in value.keys() - expected)
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(unknown)}")
    return value


def _text(where: str, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"field '{field}' must be a non-empty string (quote it in YAML), got {value!r}")
    return value.strip()


def _date(where: str, field: str, value: Any) -> date:
    # YAML gives a date for an unquoted ISO date; a quoted one arrives as text.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(where, f"field '{field}' must be a date (YYYY-MM-DD), got {value!r}")


def _days(where: str, field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"field '{field}' must be an integer >= {minimum}, got {value!r}")
    return value


def _parse_law(version: str, index: int, entry: Any) -> list[DetentionRule]:
    where = f"laws[{index}]"
    if isinstance(entry, Mapping) and isinstance(entry.get("law"), str):
        where = f"law '{entry['law']}'"
    fields = _check_fields(where, entry, _LAW_FIELDS)
    law = _text(where, "law", fields["law"])
    valid_from = _date(where, "valid_from", fields["valid_from"])
    valid_until = (
        None if fields["valid_until"] is None else _date(where, "valid_until", fields["valid_until"])
    )
    if valid_until is not None and valid_until <= valid_from:
        raise _fail(where, f"valid_until {valid_until} must be after valid_from {valid_from}")
    if not isinstance(fields["verified"], bool):
        raise _fail(where, f"field 'verified' must be true or false, got {fields['verified']!r}")
    _text(where, "source", fields["source"])
    registers = fields["registers"]
    if not isinstance(registers, Mapping):
        raise _fail(where, "field 'registers' must be a mapping of register to limits")
    unknown = sorted(str(r) for r in registers if r not in REGISTERS)
    if unknown:
        raise _fail(where, f"unknown register(s) {', '.join(unknown)}; expected {', '.join(REGISTERS)}")
    missing = [r for r in REGISTERS if r not in registers]
    if missing:
        # A missing register would silently never be checked for overstaying.
        raise _fail(where, f"missing register(s) {', '.join(missing)}")
    rules = []
    for register in REGISTERS:
        at = f"{where}, register '{register}'"
        limits = _check_fields(at, registers[register], _REGISTER_FIELDS)
        rules.append(
            DetentionRule(
                law=law,
                version=version,
                register=register,
                valid_from=valid_from,
                valid_until=valid_until,
                initial_days=_days(at, "initial_days", limits["initial_days"], 1),
                extension_days=_days(at, "extension_days", limits["extension_days"], 0),
                exceptional_days=_days(at, "exceptional_days", limits["exceptional_days"], 0),
                citation=_text(at, "citation", limits["citation"]),
                verified=fields["verified"],
            )
        )
    return rules


def _check_no_overlap(rules: Sequence[DetentionRule]) -> None:
    for register in REGISTERS:
        ordered = sorted((r for r in rules if r.register == register), key=lambda r: r.valid_from)
        for earlier, later in pairwise(ordered):
            if earlier.valid_until is None or earlier.valid_until > later.valid_from:
                raise _fail(
                    f"law '{later.law}', register '{register}'",
                    f"valid_from {later.valid_from} overlaps law '{earlier.law}' "
                    f"(valid {earlier.valid_from} until {earlier.valid_until or 'open'})",
                )


def parse_rules(document: Mapping[str, Any]) -> list[DetentionRule]:
    """The rules of a detention-limits document; ValueError naming the law and field when it is wrong."""
    fields = _check_fields("document", document, _TOP_FIELDS)
    version = _text("document", "version", fields["version"])
    laws = fields["laws"]
    if not isinstance(laws, list) or not laws:
        raise _fail("document", "field 'laws' must be a non-empty list")
    rules: list[DetentionRule] = []
    names: set[str] = set()
    for index, entry in enumerate(laws):
        parsed = _parse_law(version, index, entry)
        if parsed[0].law in names:
            raise _fail(f"law '{parsed[0].law}'", "appears twice")
        names.add(parsed[0].law)
        rules.extend(parsed)
    _check_no_overlap(rules)
    return rules


def rule_for(rules: Sequence[DetentionRule], register: str, detention_start: date) -> DetentionRule | None:
    """The rule of the law in force when the detention started; None for B registers or no law."""
    for rule in rules:
        if rule.register == register and rule.applies_to(detention_start):
            return rule
    return None


def authorised_until(rule: DetentionRule, detention_start: date, extension_days: int) -> date:
    """The last authorised day, the start day being day 1; extensions beyond what the law allows don't count."""
    allowed = min(extension_days, rule.extension_days + rule.exceptional_days)
    return detention_start + timedelta(days=rule.initial_days + allowed - 1)


def decide_detention(
    rules: Sequence[DetentionRule],
    register: str,
    detention_start: date | None,
    extension_days: int,
    day: date,
) -> DetentionFinding | None:
    """Overstaying after the last authorised day; a 3- or 10-day notice as the end nears; else None."""
    if detention_start is None:
        return None
    rule = rule_for(rules, register, detention_start)
    if rule is None:
        return None
    until = authorised_until(rule, detention_start, extension_days)
    days_left = (until - day).days
    if days_left < 0:
        return DetentionFinding("overstaying", until, days_over=-days_left, days_left=0, rule=rule)
    if days_left <= NOTICE_3_DAYS:
        return DetentionFinding("notice_3", until, days_over=0, days_left=days_left, rule=rule)
    if days_left <= NOTICE_10_DAYS:
        return DetentionFinding("notice_10", until, days_over=0, days_left=days_left, rule=rule)
    return None


def rule_rows(rules: Sequence[DetentionRule]) -> list[RuleRow]:
    """Rows for consolidator.detention_rules, in its column order."""
    return [
        (
            r.law,
            r.version,
            r.register,
            r.valid_from,
            r.valid_until,
            r.initial_days,
            r.extension_days,
            r.exceptional_days,
            r.citation,
        )
        for r in rules
    ]
