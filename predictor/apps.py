from django.apps import AppConfig


class PredictorConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "predictor"
    verbose_name = "Crypto Oracle predictor"

    def ready(self) -> None:
        from celery.signals import task_failure

        # The project's own system checks (cryptooracle.E001 and on) are registered on import.
        from cryptooracle import checks  # noqa: F401

        # Register the Celery tasks in every process (web, commands), not only in workers:
        # eager mode and canvas signatures (the walk-forward chord) look them up by name.
        from predictor import tasks  # noqa: F401
        from predictor.services.notify import task_failure_notify

        # A scheduled task that fails is announced on the webhook (NOTIFY_WEBHOOK_URL).
        task_failure.connect(task_failure_notify, weak=False, dispatch_uid="predictor.notify")
