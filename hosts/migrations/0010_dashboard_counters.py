"""The fleet page without counting the fleet per request: hosts by status per project, kept as
hosts change (hosts.fleet.counters; a project is counted when first read, so no data step), and
an index for the first page's order (name, then pk)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('hosts', '0009_provisionedvm_cancelled'),
        ('portal', '0004_apitoken_expiry_and_scope'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProjectHostCounts',
            fields=[
                ('project', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='portal.project')),
                ('total', models.PositiveIntegerField(default=0)),
                ('running', models.PositiveBigIntegerField(default=0)),
                ('unknown', models.PositiveIntegerField(default=0)),
                ('on', models.PositiveIntegerField(default=0)),
                ('suspect', models.PositiveIntegerField(default=0)),
                ('off', models.PositiveIntegerField(default=0)),
                ('disabled', models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.AddIndex(
            model_name='host',
            index=models.Index(fields=['name', 'id'], name='host_name_order'),
        ),
    ]
