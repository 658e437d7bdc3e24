"""The framework-free core of Crypto Oracle.

Nothing in this package imports Django, DRF, Celery or reads ``os.environ``;
an import-linter contract (``pyproject.toml``) keeps it so.
"""
