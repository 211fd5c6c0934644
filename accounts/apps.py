from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from accounts.portal_sessions import session_lifetime_start

        user_logged_in.connect(session_lifetime_start, dispatch_uid="accounts.session_lifetime_start")
