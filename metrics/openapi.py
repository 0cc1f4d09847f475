"""The usage API's contract, published at /api/v1/openapi.json (OpenAPI 3.1).

The document is kept next to the code it describes (metrics/openapi.json) and a test checks
real responses against it, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

DOCUMENT = Path(__file__).with_name("openapi.json")


@cache
def openapi_document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


@require_GET
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())
