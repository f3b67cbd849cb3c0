"""Loads the versioned detention limits shipped with the consolidator (data/detention_limits.yaml)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from services.consolidator.domain.detention import DetentionRule, parse_rules

DEFAULT_PATH: Traversable = resources.files("services.consolidator.data") / "detention_limits.yaml"


def load_rules(path: Path | None = None) -> list[DetentionRule]:
    """The detention rules of `path` (the packaged file by default); errors name the file."""
    source: Path | Traversable = DEFAULT_PATH if path is None else path
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read detention rules from {source}: {exc}") from exc
    try:
        return parse_rules(document)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc
