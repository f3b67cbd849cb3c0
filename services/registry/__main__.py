"""python -m services.registry"""

from shared.runtime import run_service

from .app import build_app
from .config import Settings

run_service("registry", Settings, build_app)
