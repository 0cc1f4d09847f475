from __future__ import annotations

console_urlpatterns: list = []
