"""python -m services.dedup"""

from shared.runtime import run_service

from .app import build_app
from .config import Settings

run_service("dedup", Settings, build_app)
