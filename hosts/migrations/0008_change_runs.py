"""A change's per-host part is a run: ChangeHost becomes ChangeRun (``change.runs``), and
what verifying checks, kept until now in one ``expect`` dictionary (with the kernel's earlier
values mixed in), gets a field each."""

from django.db import migrations, models


def expect_to_fields(apps, schema_editor):  # type: ignore[no-untyped-def]
    ChangeRun = apps.get_model("hosts", "ChangeRun")
    for run in ChangeRun.objects.all().iterator():
        expect = run.expect if isinstance(run.expect, dict) else {}
        ssh_port = (expect.get("ssh_port") or [[None]])[0][0]
        run.expect_open = [list(p) for p in expect.get("open") or []]
        run.expect_closed = [list(p) for p in expect.get("closed") or []]
        run.expect_ssh_port = int(ssh_port) if ssh_port else None
        run.expect_sysctl = {str(k): str(v) for k, v in expect.get("sysctl") or []}
        run.docker_tls = bool(expect.get("docker_tls"))
        run.rotate_docker = bool((expect.get("rotate") or {}).get("docker"))
        run.kernel_before = dict(expect.get("kernel_before") or {})
        run.save()


def fields_to_expect(apps, schema_editor):  # type: ignore[no-untyped-def]
    ChangeRun = apps.get_model("hosts", "ChangeRun")
    for run in ChangeRun.objects.all().iterator():
        expect = {"open": run.expect_open, "closed": run.expect_closed}
        if run.expect_ssh_port:
            expect["ssh_port"] = [[run.expect_ssh_port]]
        if run.expect_sysctl:
            expect["sysctl"] = [[k, v] for k, v in run.expect_sysctl.items()]
        if run.docker_tls:
            expect["docker_tls"] = [[2376]]
        if run.rotate_docker:
            expect["rotate"] = {"ssh": True, "docker": True}
        if run.kernel_before:
            expect["kernel_before"] = run.kernel_before
        run.expect = expect
        run.save()


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0007_deploys"),
    ]

    operations = [
        migrations.RenameModel("ChangeHost", "ChangeRun"),
        migrations.AlterField(
            model_name="changerun",
            name="change",
            field=models.ForeignKey(
                on_delete=models.deletion.CASCADE, related_name="runs", to="hosts.change"
            ),
        ),
        migrations.AddField("changerun", "expect_open", models.JSONField(blank=True, default=list)),
        migrations.AddField("changerun", "expect_closed", models.JSONField(blank=True, default=list)),
        migrations.AddField("changerun", "expect_ssh_port", models.PositiveIntegerField(blank=True, null=True)),
        migrations.AddField("changerun", "expect_sysctl", models.JSONField(blank=True, default=dict)),
        migrations.AddField("changerun", "docker_tls", models.BooleanField(default=False)),
        migrations.AddField("changerun", "rotate_docker", models.BooleanField(default=False)),
        migrations.AddField("changerun", "kernel_before", models.JSONField(blank=True, default=dict)),
        migrations.RunPython(expect_to_fields, fields_to_expect),
        migrations.RemoveField("changerun", "expect"),
    ]
