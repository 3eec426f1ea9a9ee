from django.apps import AppConfig


class KlaviyoSyncConfig(AppConfig):
    name = "klaviyo_sync"
    verbose_name = "Klaviyo"

    def ready(self) -> None:
        from klaviyo_sync import (  # noqa: F401  (connect the receivers, register the checks)
            checks,
            receivers,
        )
