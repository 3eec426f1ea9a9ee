from django.apps import AppConfig


class BackInStockConfig(AppConfig):
    name = "backinstock"
    verbose_name = "Back in stock"

    def ready(self) -> None:
        from backinstock import checks  # noqa: F401  (registers the checks)
