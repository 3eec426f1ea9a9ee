import os

from django.apps import AppConfig


class CeilingConfig(AppConfig):
    name = "bench.ceiling"
    label = "ceiling"
    verbose_name = "Load bench ceiling"

    def ready(self) -> None:
        # bench/load.py --without publish: what the endpoint costs without queuing the push task
        # after commit (a diagnostic; the app itself always queues it).
        if os.environ.get("BENCH_WITHOUT_PUBLISH") == "1":
            from backinstock.hooks import subscription_pending

            receiver = "klaviyo_sync.push_pending_subscription"
            if not subscription_pending.disconnect(dispatch_uid=receiver):
                raise RuntimeError(f"BENCH_WITHOUT_PUBLISH: no receiver {receiver} to disconnect")
