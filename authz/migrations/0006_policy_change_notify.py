from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("authz", "0005_grant_provider")]

    operations: list = []
