"""A principal is (provider, subject): the columns tid and oid are renamed, so every row keeps its id.

A directory trusted through the ENTRA_* settings is a provider named by its directory id, so the
stored (tid, oid) already is (provider, subject); only the lengths grow, to fit a declared
provider's name and an OpenID Connect ``sub`` (255 characters).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_alter_user_options")]

    operations = [
        migrations.RemoveConstraint(model_name="principal", name="principal_unique_identity"),
        migrations.RenameField(model_name="principal", old_name="tid", new_name="provider"),
        migrations.RenameField(model_name="principal", old_name="oid", new_name="subject"),
        migrations.AlterField(
            model_name="principal",
            name="provider",
            field=models.CharField(max_length=100, verbose_name="identity provider"),
        ),
        migrations.AlterField(
            model_name="principal",
            name="subject",
            field=models.CharField(max_length=255, verbose_name="subject (oid or sub)"),
        ),
        migrations.AddConstraint(
            model_name="principal",
            constraint=models.UniqueConstraint(
                fields=("provider", "subject"), name="principal_unique_identity"
            ),
        ),
    ]
