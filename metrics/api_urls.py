"""The usage API alone, for metrics.middleware.ApiDispatchMiddleware (same paths as the site)."""

from __future__ import annotations

from django.urls import include, path

from metrics.urls import api_patterns

urlpatterns = [path("api/v1/", include(api_patterns))]
