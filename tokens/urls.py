from __future__ import annotations

from django.urls import path

from tokens import views

# Mounted under /org/ in the "console" namespace (asksage_admin/urls.py).
console_urlpatterns = [
    path("users/", views.users, name="users"),
    path("users/add/", views.user_add, name="user_add"),
    path("users/allocations/", views.allocations_save, name="allocations_save"),
    path("users/<int:user_id>/", views.user_detail, name="user_detail"),
    path("users/<int:user_id>/status/", views.user_status, name="user_status"),
    path("users/<int:user_id>/role/", views.user_role, name="user_role"),
]
