"""The bench's URL conf (``config.settings.bench``): the project's URLs plus the ceiling view."""

from django.urls import path

from config.urls import urlpatterns as project_urlpatterns

from .views import ceiling

urlpatterns = [
    path("bench/ceiling", ceiling, name="bench-ceiling"),
    *project_urlpatterns,
]
