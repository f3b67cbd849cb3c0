"""python -m services.monitor"""

from shared.runtime import run_service

from .app import build_app
from .config import Settings

run_service("monitor", Settings, build_app)
