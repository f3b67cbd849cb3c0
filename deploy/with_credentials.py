"""Starts a service as its own broker user (and database role) from the credentials file (used by containers).

python -m deploy.with_credentials registry -- python -m services.registry
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deploy import credentials as creds


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    service, command = sys.argv[1], sys.argv[3:]
    path = Path(os.environ.get("CREDENTIALS_FILE", ".run/credentials.csv"))
    known = creds.read(path)
    try:
        credential = creds.find(known, "service", service)
        # A service with its own database role connects as it, never as the administrator in DATABASE_URL.
        if "DATABASE_URL" in os.environ:
            os.environ["DATABASE_URL"] = creds.database_url(os.environ["DATABASE_URL"], known, service)
    except KeyError as exc:
        sys.exit(f"{exc.args[0]} (looked in {path})")
    os.environ["AMQP_URL"] = creds.amqp_url(
        os.environ.get("AMQP_BASE_URL", "amqp://127.0.0.1:5672/"),
        credential,
        os.environ.get("SIMPUL_VHOST", "simpul"),
    )
    if service == "dedup" and not os.environ.get("DEDUP_GALLERY_KEY"):
        os.environ["DEDUP_GALLERY_KEY"] = creds.gallery_key(path.parent)
    os.execvp(command[0], command)  # noqa: S606 (the operator's own command line)


if __name__ == "__main__":
    main()
