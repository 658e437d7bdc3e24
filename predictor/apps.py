from django.apps import AppConfig


class PredictorConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "predictor"
    verbose_name = "Crypto Oracle predictor"

    def ready(self) -> None:
        # Register the Celery tasks in every process (web, commands), not only in workers:
        # eager mode and canvas signatures (the walk-forward chord) look them up by name.
        # The project's own system checks (cryptooracle.E001 and on) are registered here too.
        from cryptooracle import checks  # noqa: F401
        from predictor import tasks  # noqa: F401
