"""Errors the services raise, in a module that imports nothing heavy.

Adapters that must not load TensorFlow (the web process answers without it) still
catch these, so they live apart from the services that raise them.
"""

from __future__ import annotations


class EvaluationError(Exception):
    """A session cannot be evaluated; the message says why."""
