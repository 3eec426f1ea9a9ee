from django.urls import path

from operations import apis

urlpatterns = [
    path("healthz", apis.healthz, name="healthz"),
    path("readyz", apis.readyz, name="readyz"),
    path("metrics", apis.metrics, name="metrics"),
]
