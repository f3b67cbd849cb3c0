"""python -m services.monitor"""

from shared.allocator import use_chosen_allocator

use_chosen_allocator()  # before anything else is loaded: this may run the process again on it

from shared.runtime import run_service  # noqa: E402

from .app import build_app  # noqa: E402
from .config import Settings  # noqa: E402

run_service("monitor", Settings, build_app)
