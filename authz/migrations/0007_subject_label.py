from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("authz", "0006_policy_change_notify")]

    operations: list = []
