"""The monitor's rules: scopes, the summaries browsers get, what status events leave, live events."""

from .scope import Role, Scope, scope_label, scope_of_login
from .views import PIPELINE, office_row, today_wib, unit_row

__all__ = [
    "PIPELINE",
    "Role",
    "Scope",
    "office_row",
    "scope_label",
    "scope_of_login",
    "today_wib",
    "unit_row",
]
