from __future__ import annotations

from django.urls import path, re_path

from metrics import alert_views, api, openapi, statement_views, user_views, views

console_urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("users/", user_views.users, name="users"),
    path("users/<int:user_id>/", user_views.user_detail, name="user_detail"),
    path("token-statistics/", views.token_statistics, name="token_statistics"),
    path("token-usage/", views.token_usage, name="token_usage"),
    path("monthly/", views.monthly, name="monthly"),
    path("exports/", views.exports_page, name="exports"),
    path("exports/verify/", views.verify_export, name="verify_export"),
    path("exports/token-usage.csv", views.token_usage_csv, name="export_token_usage"),
    path("exports/users.csv", views.users_csv, name="export_users"),
    path("exports/users-with-tokens.csv", views.users_with_tokens_csv, name="export_users_tokens"),
    path("activity/", views.activity, name="activity"),
    path("notifications/", alert_views.notifications, name="notifications"),
    path("exports/activity.csv", views.activity_csv, name="export_activity"),
    path("statements/", statement_views.statement_list, name="statements"),
    re_path(
        r"^statements/(?P<month>\d{4}-\d{2})/$",
        statement_views.statement_detail,
        name="statement",
    ),
    re_path(
        r"^statements/(?P<month>\d{4}-\d{2})\.csv$",
        statement_views.statement_csv,
        name="statement_csv",
    ),
]

# Mounted at /api/v1/; no trailing slash.
api_patterns: tuple[list, str] = (
    [
        path("usage/events", api.usage_events, name="usage_events"),
        path("quota/check", api.quota_check, name="quota_check"),
        path("openapi.json", openapi.openapi, name="openapi"),
    ],
    "api",
)
