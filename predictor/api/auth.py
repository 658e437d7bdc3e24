# mypy: disallow-subclassing-any=False, warn-return-any=False
# (DRF ships no type hints: its classes are Any.)
"""``POST /api/auth/token/``: a user's API token for a user name and password."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from predictor.api.parsers import BoundedJSONParser


class LockedOut(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many failed logins for this user from this address; try again later."
    default_code = "locked_out"


class TokenView(ObtainAuthToken):
    """DRF's token view, answering 429 while django-axes locks the user out.

    axes flags the DRF request it was handed, which its middleware never sees (that
    reads Django's request), so without this a locked-out client would get the same
    400 as for a wrong password, even with the right one.
    """

    parser_classes = [BoundedJSONParser]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if getattr(request, "axes_locked_out", False):
                minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
                raise LockedOut(
                    f"Too many failed logins for this user from this address; "
                    f"try again in {minutes} minutes."
                ) from None
            raise
