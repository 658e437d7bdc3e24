# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""The one request body the API reads: JSON, bounded in size and depth.

DRF's own ``JSONParser`` is given ``request.body``, so an oversized body raises
Django's ``RequestDataTooBig`` outside DRF's error handling, and a deeply nested
one escapes as ``RecursionError``: both 500s. This parser refuses a
body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413 before reading it, and any
undecodable or non-standard JSON (``NaN``, ``Infinity``) with 400. Every other
media type — form data, pickles, ``.npy`` files — is answered 415 by DRF,
because no other parser is installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def body_limit() -> int | None:
    """Bytes a request body may have: Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return None if limit is None else int(limit)


class BoundedJSONParser(BaseParser):
    """``application/json`` of at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes.

    Not a ``JSONParser`` subclass on purpose: DRF hands those ``request.body``, which
    Django reads whole (or refuses with an exception, a 500 in DRF) before we can check.
    """

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        context = parser_context or {}
        limit = body_limit()
        request = context.get("request")
        if limit is not None and request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                raise ParseError("Content-Length is not a number.") from None
            if declared > limit:
                raise PayloadTooLarge(f"Request body is over {limit} bytes.")
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"Request body is over {limit} bytes.")
        encoding = context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_reject_constant)
            if _SURROGATE_ESCAPE.search(raw):
                # A lone surrogate escape (\ud800) is valid JSON but not text: it could be
                # neither stored (PostgreSQL) nor echoed back in an error message (UTF-8).
                json.dumps(data, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError) as exc:  # Unicode errors are ValueErrors
            raise ParseError(f"JSON parse error - {exc}"[:300]) from None
        return data
