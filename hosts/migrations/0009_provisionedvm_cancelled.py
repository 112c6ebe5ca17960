"""A provisioned VM can be cancelled before it enrolls, and keeps when it began to wait for
its phone-home (the request page shows how long it has waited)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('hosts', '0008_change_runs'),
    ]

    operations = [
        migrations.AddField(
            model_name='provisionedvm',
            name='waiting_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='provisionedvm',
            name='state',
            field=models.CharField(choices=[('queued', 'Queued'), ('cloning', 'Cloning'), ('powering_on', 'Powering on'), ('waiting', 'Waiting for enrollment'), ('enrolled', 'Enrolled'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=12),
        ),
    ]
