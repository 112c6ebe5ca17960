"""API tokens get an expiry and a scope. Tokens made before expire 90 days from now
(their scripts keep working meanwhile) and keep the read-write, all-projects reach
they had."""

import datetime

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def expire_existing(apps, schema_editor):  # type: ignore[no-untyped-def]
    ApiToken = apps.get_model("portal", "ApiToken")
    ApiToken.objects.filter(expires__isnull=True).update(expires=timezone.now() + datetime.timedelta(days=90))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_audit_append_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="read_only",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="project",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="api_tokens",
                to="portal.project",
            ),
        ),
        migrations.RunPython(expire_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="expires",
            field=models.DateTimeField(),
        ),
    ]
