from django.apps import AppConfig


class CeilingConfig(AppConfig):
    name = "bench.ceiling"
    label = "ceiling"
    verbose_name = "Load bench ceiling"
