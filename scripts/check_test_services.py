"""Say clearly which of the test suite's services is not running, and how to start it.

Run by ``make test`` before pytest; exits non-zero when PostgreSQL or Redis cannot be reached.
"""

import os
import socket
import sys
from urllib.parse import urlsplit

SERVICES = [
    (
        "PostgreSQL",
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/backinstock"),
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(pg_lsclusters -h | awk '{print $1, $2}') start",
    ),
    (
        "Redis",
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        6379,
        'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    ),
]


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def main() -> int:
    missing = 0
    for name, url, default_port, start in SERVICES:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or default_port
        if not reachable(host, port):
            missing += 1
            print(f"{name} is not reachable at {host}:{port}. Start it, e.g.:\n    {start}\n")
    if missing:
        print("The tests need PostgreSQL and Redis (see README, 'Running the tests').")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
