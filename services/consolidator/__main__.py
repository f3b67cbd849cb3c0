"""python -m services.consolidator"""

from shared.runtime import run_service

from .app import build_app
from .config import Settings

run_service("consolidator", Settings, build_app)
