"""`python -m klaviyo_sandbox [--host] [--port] [--api-key KEY] [--rate-limits real|off]
[--job-seconds S] [--spec PATH] [--log-requests]`: serve the Klaviyo sandbox until interrupted.

It accepts one private key: `--api-key`, else `$KLAVIYO_API_KEY` (the variable the project's
client reads, so one environment serves both); without either it does not start."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from .app import Sandbox
from .schema import SPEC_ENV, default_spec_path

API_KEY_ENV = "KLAVIYO_API_KEY"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m klaviyo_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument(
        "--api-key", default=os.environ.get(API_KEY_ENV, ""),
        help=f"the one private key accepted (default: ${API_KEY_ENV})",
    )  # fmt: skip
    parser.add_argument("--rate-limits", choices=("real", "off"), default="real")
    parser.add_argument("--job-seconds", type=float, default=0.2)
    parser.add_argument(
        "--spec", type=Path, default=None, help=f"Klaviyo's OpenAPI spec (default: ${SPEC_ENV}, "
        "else ../shared/klaviyo/ next to the project, if there)",
    )  # fmt: skip
    parser.add_argument("--log-requests", action="store_true", help="log every request")
    options = parser.parse_args(argv)
    if not options.api_key:
        parser.error(f"give the private key to accept: --api-key KEY or ${API_KEY_ENV}")
    spec = options.spec or default_spec_path()
    if spec is not None and not spec.is_file():
        parser.error(f"no spec at {spec}")
    if spec is None:
        print("No Klaviyo OpenAPI spec found: only the built-in checks run.", file=sys.stderr)
    sandbox = Sandbox(
        options.host,
        options.port,
        api_key=options.api_key,
        rate_limits=options.rate_limits == "real",
        job_seconds=options.job_seconds,
        spec_path=spec,
        log_requests=options.log_requests,
    ).start()
    print(sandbox.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
