from django.apps import AppConfig


class AuthzConfig(AppConfig):
    name = "authz"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"
