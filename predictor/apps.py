from django.apps import AppConfig


class PredictorConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "predictor"
    verbose_name = "Crypto Oracle predictor"

    def ready(self) -> None:
        # Register the Celery tasks in every process (web, commands), not only in workers:
        # eager mode and canvas signatures (the walk-forward chord) look them up by name.
        from predictor import tasks  # noqa: F401
