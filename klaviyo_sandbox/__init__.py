"""A local look-alike of the Klaviyo API, for demos and tests (like stripe-mock or LocalStack).

Standalone: it imports no Django, and runs as `python -m klaviyo_sandbox`. It keeps catalog
items, variants, categories, back-in-stock subscriptions and profiles in memory, runs bulk jobs
through queued, processing and complete, checks bodies against Klaviyo's OpenAPI spec when at
hand, applies Klaviyo's rate limits and injects faults on request. See app.Sandbox.
"""

from .account import Account
from .app import Sandbox
from .faults import Fault
from .ratelimit import REAL_LIMITS
from .schema import default_spec_path

__all__ = ["REAL_LIMITS", "Account", "Fault", "Sandbox", "default_spec_path"]
