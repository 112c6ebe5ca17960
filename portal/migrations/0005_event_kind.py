"""Events get a kind (portal.event_kinds), what alert rules choose by; old events have none."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_apitoken_expiry_and_scope")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="kind",
            field=models.CharField(blank=True, db_index=True, default="", max_length=40),
        ),
    ]
