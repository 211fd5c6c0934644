"""Grants name their identity provider: a grant matches only the users and groups of its provider.

Existing grants were given to Entra ids before grants named a provider. They are bound to the one
trusted provider when there is exactly one (an existing deployment with one directory migrates
without changing its settings). With several trusted providers the migration does not guess: it
stops, naming GRANTS_PROVIDER, the provider to bind them to (set it for this one run of
``migrate``). Without grants there is nothing to bind and nothing is asked. The grants' history
rows are bound with them.
"""

import os

from django.core.management.base import CommandError
from django.db import migrations, models

from accounts.providers import provider_names
from lib.guid import is_guid

OVERRIDE = "GRANTS_PROVIDER"
PROVIDER_HELP = "The identity provider of the user or group: an Entra directory id or a provider's name."


def existing_grants_provider() -> str:
    """The provider existing grants are bound to; else CommandError saying what to set (``migrate``
    prints it as one line, without a traceback)."""
    trusted = provider_names()
    shown = ", ".join(trusted) or "none"
    chosen = os.environ.get(OVERRIDE, "").strip()
    if chosen:
        chosen = chosen.lower() if is_guid(chosen.lower()) else chosen
        if chosen not in trusted:
            raise CommandError(
                f"{OVERRIDE}: {chosen!r} is not a trusted identity provider (trusted: {shown})"
            )
        return chosen
    if len(trusted) == 1:
        return trusted[0]
    if not trusted:
        raise CommandError(
            f"{OVERRIDE}: the existing grants must be bound to an identity provider and none is trusted; "
            "configure the Entra directory they were given for (ENTRA_TENANT_ID), then migrate again"
        )
    raise CommandError(
        f"{OVERRIDE}: the existing grants must be bound to one identity provider and several are trusted "
        f"({shown}); set {OVERRIDE} to the one whose users and groups they were given to, then migrate again"
    )


def grants_bind(apps, schema_editor):
    alias = schema_editor.connection.alias
    grants = apps.get_model("authz", "Grant").objects.using(alias)
    if not grants.exists():
        return
    provider = existing_grants_provider()
    grants.update(provider=provider)
    history = apps.get_model("authz", "HistoricalGrant").objects.using(alias)
    history.filter(provider="").update(provider=provider)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_principal_provider"), ("authz", "0004_feature_catalogue")]

    operations = [
        migrations.AlterModelOptions(
            name="grant",
            options={"ordering": ["tenant", "role", "subject_type", "provider", "subject_id"]},
        ),
        migrations.RemoveConstraint(model_name="grant", name="grant_unique_subject_role"),
        migrations.RemoveIndex(model_name="grant", name="grant_subject_idx"),
        migrations.AddField(
            model_name="grant",
            name="provider",
            field=models.CharField(
                default="",
                help_text=PROVIDER_HELP,
                max_length=100,
                verbose_name="identity provider",
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="historicalgrant",
            name="provider",
            field=models.CharField(
                default="",
                help_text=PROVIDER_HELP,
                max_length=100,
                verbose_name="identity provider",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(grants_bind, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="grant",
            name="subject_id",
            field=models.CharField(
                help_text="The user's id (Entra object id, or the provider's sub) or the group's id.",
                max_length=255,
            ),
        ),
        migrations.AlterField(
            model_name="historicalgrant",
            name="subject_id",
            field=models.CharField(
                help_text="The user's id (Entra object id, or the provider's sub) or the group's id.",
                max_length=255,
            ),
        ),
        migrations.AddIndex(
            model_name="grant",
            index=models.Index(fields=["subject_id", "provider", "tenant"], name="grant_subject_idx"),
        ),
        migrations.AddConstraint(
            model_name="grant",
            constraint=models.UniqueConstraint(
                fields=("tenant", "role", "subject_type", "provider", "subject_id"),
                name="grant_unique_subject_role",
            ),
        ),
        migrations.AddConstraint(
            model_name="grant",
            constraint=models.CheckConstraint(condition=~models.Q(provider=""), name="grant_names_provider"),
        ),
    ]
