"""Labels admins give users and groups (``SubjectLabel``), with their history."""

import django.db.models.deletion
import simple_history.models
from django.conf import settings
from django.db import migrations, models

PROVIDER = models.CharField(
    help_text="The provider that vouches for the subject.", max_length=100, verbose_name="identity provider"
)
SUBJECT_TYPE = models.CharField(choices=[("user", "User"), ("group", "Group")], max_length=8)
SUBJECT_ID = models.CharField(
    help_text="The user's object id (or sub), or the group's id, as grants name it.", max_length=255
)
LABEL = models.CharField(
    help_text="A name for the people who read the portal, e.g. 'Finance approvers'. Shown, never trusted.",
    max_length=100,
)


class Migration(migrations.Migration):
    dependencies = [
        ("authz", "0006_policy_change_notify"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="HistoricalSubjectLabel",
            fields=[
                (
                    "id",
                    models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name="ID"),
                ),
                ("provider", PROVIDER.clone()),
                ("subject_type", SUBJECT_TYPE.clone()),
                ("subject_id", SUBJECT_ID.clone()),
                ("label", LABEL.clone()),
                ("updated_at", models.DateTimeField(blank=True, editable=False)),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.CharField(max_length=100, null=True)),
                (
                    "history_type",
                    models.CharField(
                        choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")], max_length=1
                    ),
                ),
                (
                    "history_user",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "historical label",
                "verbose_name_plural": "historical labels",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="SubjectLabel",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("provider", PROVIDER.clone()),
                ("subject_type", SUBJECT_TYPE.clone()),
                ("subject_id", SUBJECT_ID.clone()),
                ("label", LABEL.clone()),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name": "label", "ordering": ["label", "subject_id"]},
        ),
        migrations.AddConstraint(
            model_name="subjectlabel",
            constraint=models.UniqueConstraint(
                fields=("subject_id", "subject_type", "provider"), name="subject_label_unique_subject"
            ),
        ),
        migrations.AddConstraint(
            model_name="subjectlabel",
            constraint=models.CheckConstraint(
                condition=models.Q(("label", ""), _negated=True), name="subject_label_not_empty"
            ),
        ),
    ]
