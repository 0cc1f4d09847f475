"""URL map. Paths are part of the public contract: keep them stable."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import urls as accounts_urls
from accounts import views as accounts_views
from asksage_admin.core import views as core_views
from metrics import urls as metrics_urls
from tokens import request_views as tokens_request_views
from tokens import urls as tokens_urls

# The console (/org/) is one namespace served by several apps.
console_patterns = (
    metrics_urls.console_urlpatterns + tokens_urls.console_urlpatterns,
    "console",
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="settings", permanent=False)),
    path("accounts/", include(accounts_urls.account_patterns)),
    path("mfa/", include(accounts_urls.mfa_patterns)),
    path("settings/", accounts_views.settings_page, name="settings"),
    path("settings/requests/", tokens_request_views.ask, name="usage_request_ask"),
    path("org/", include(console_patterns)),
    path("invitations/", include(tokens_urls.invitation_patterns)),
    path("staff/login/", RedirectView.as_view(pattern_name="accounts:login", query_string=True)),
    path("staff/", admin.site.urls),
    path("api/v1/", include(metrics_urls.api_patterns)),
    path("healthz", accounts_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", core_views.prometheus_metrics, name="prometheus_metrics"),
    path("favicon.ico", core_views.favicon, name="favicon"),
]

# Database faults raised outside a view (a middleware's query) answer 503, not 500.
handler500 = "asksage_admin.core.views.server_error"
