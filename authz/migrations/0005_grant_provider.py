from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_principal_provider"), ("authz", "0004_feature_catalogue")]

    operations: list = []
