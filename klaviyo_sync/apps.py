from django.apps import AppConfig


class KlaviyoSyncConfig(AppConfig):
    name = "klaviyo_sync"
    verbose_name = "Klaviyo"

    def ready(self) -> None:
        from klaviyo_sync import receivers  # noqa: F401  (connects the receivers)
