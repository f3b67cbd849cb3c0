"""structlog set-up: JSON when not on a terminal, service name bound, NIKs masked, biometrics dropped."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

NIK_PATTERN = re.compile(r"(?<!\d)(\d{4})\d{8}(\d{4})(?!\d)")
# Keys whose values are biometric data or raw message bodies; they never reach a log line.
DROPPED_KEYS = frozenset(
    {
        "templates",
        "template",
        "biometrics",
        "fingerprints",
        "fingerprint",
        "iris",
        "irises",
        "iris_codes",
        "iris_code",
        "mask",
        "face",
        "face_embedding",
        "embedding",
        "signature",
        "signature_hash",
        "body",
        "records",
    }
)
MAX_STRING = 2_000


def mask_niks(text: str) -> str:
    return NIK_PATTERN.sub(r"\1********\2", text)


def _scrub(value: Any, *, keep_tail: bool = False) -> Any:
    if isinstance(value, str):
        text = mask_niks(value)
        if len(text) <= MAX_STRING:
            return text
        # A traceback says what went wrong at its end.
        return "[truncated]…" + text[-MAX_STRING:] if keep_tail else text[:MAX_STRING] + "…[truncated]"
    if isinstance(value, Mapping):
        return {
            k: ("[dropped]" if k in DROPPED_KEYS and not isinstance(v, int | float | bool) else _scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, bytes):
        return f"[{len(value)} bytes]"
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask every NIK-shaped number and drop biometric fields, at any depth."""
    for key in list(event_dict):
        value = event_dict[key]
        if key in DROPPED_KEYS and not isinstance(value, int | float | bool):
            event_dict[key] = "[dropped]"
        else:
            event_dict[key] = _scrub(value, keep_tail=key in ("exception", "stack"))
    return event_dict


def configure_logging(service: str, *, level: str = "INFO", json: bool | None = None) -> None:
    """Route structlog and the standard library (FastStream, asyncpg, uvicorn) through one redacting chain."""
    as_json = (not sys.stderr.isatty()) if json is None else json

    def add_service(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
