"""The keys app: signing keys, their stores, rotation and the JWKS."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = "Signing keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery import signals

        from keys import checks  # registers the system check

        signals.worker_init.connect(checks.worker_start_verify, dispatch_uid="keys.worker_start_verify")
        from keys.schedules import schedule_after_migrate

        # Every migrate (make run, each deploy) seeds the beat schedule operators then own.
        post_migrate.connect(schedule_after_migrate, sender=self, dispatch_uid="keys.schedule")
