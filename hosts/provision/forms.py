"""The provisioning forms: a request for new Photon VMs from a template (with its placement
in the vCenter) and a kickstart install; the vCenters and profiles a person may use."""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse

from hosts.changes.desired import settings_problems
from hosts.models import Profile, ProvisionQuota, ProvisionRequest, VCenter, VirtualMachine
from hosts.provision import checks as provision_checks
from hosts.provision import offer
from hosts.vsphere.placement import Placement
from portal import access
from portal.forms import ClarityForm
from portal.models import Project

#: The form's placement pickers: (field, Placement section).
PLACEMENT_FIELDS = (
    ("resource_pool", "pools"),
    ("folder", "folders"),
    ("network", "networks"),
    ("datastore", "datastores"),
)


AS_TEMPLATE = ("", "As the template")


def allowed_vcenters(user: Any) -> Any:
    """The vCenters of the quotas of the projects ``user`` may provision in."""
    projects = access.projects(user, "provision.request")
    through = ProvisionQuota.vcenters.through.objects.filter(provisionquota__project__in=projects)
    return VCenter.objects.filter(enabled=True, pk__in=through.values("vcenter_id")).order_by("name")


def _allowed_profile(profile: Profile | None) -> Profile | None:
    """A profile written into a new host's first boot obeys the same rules as a change."""
    problems = settings_problems(profile.settings) if profile is not None else []
    if problems:
        reasons = "; ".join(p.message for p in problems)
        raise forms.ValidationError(f"Profile {profile} is refused: {reasons}. Edit the profile first.")
    return profile


class TemplateField(forms.ModelChoiceField):
    """Offers the templates; accepts any VM of the allowed vCenters, so that the form's
    ``clean`` says why a VM that is not offered (a host's VM, a forged id) is refused,
    rather than Django's "not one of the available choices"."""

    lookup: Any = None

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values or self.lookup is None:
            return super().to_python(value)
        offered = self.queryset
        self.queryset = self.lookup
        try:
            return super().to_python(value)
        finally:
            self.queryset = offered


class ProvisionForm(ClarityForm, forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    vcenter = forms.ModelChoiceField(queryset=VCenter.objects.none(), label="vCenter")
    template = TemplateField(
        queryset=VirtualMachine.objects.none(),
        help_text="A Photon OS template (marked so in vSphere, or listed on the project's quota).",
    )
    datacenter = forms.ChoiceField(required=False, help_text="Narrows the choices below.")
    resource_pool = forms.ChoiceField(required=False, label="Cluster / resource pool")
    folder = forms.ChoiceField(required=False, label="VM folder")
    network = forms.ChoiceField(required=False, help_text="For the first network adapter.")
    datastore = forms.ChoiceField(required=False)
    cpus = forms.IntegerField(min_value=1, max_value=64, initial=2, label="CPUs")
    memory_mb = forms.IntegerField(min_value=256, max_value=1048576, initial=2048, label="Memory (MB)")
    count = forms.IntegerField(min_value=1, max_value=provision_checks.MAX_COUNT, initial=1, label="How many")
    name_pattern = forms.CharField(max_length=60, initial="photon-{n}", help_text="{n} counts from 1.")
    profile = forms.ModelChoiceField(queryset=Profile.objects.none(), required=False)

    def __init__(self, *args: Any, user: Any, placement: Placement | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.placement = placement
        projects = access.projects(user, "provision.request")
        vcenters = allowed_vcenters(user)
        self.fields["project"].queryset = projects  # type: ignore[attr-defined]
        self.fields["vcenter"].queryset = vcenters  # type: ignore[attr-defined]
        offered = provision_checks.template_choices(projects, vcenters)
        self.fields["template"].queryset = offered  # type: ignore[attr-defined]
        # Offered in natural order with where each is (the queryset still decides what is valid).
        templates = list(offered)
        self.fields["template"].choices = [("", "---------"), *offer.choices(templates)]  # type: ignore[attr-defined]
        with_templates = {vm.vcenter_id for vm in templates}
        #: The vCenters this person may clone in that offer no template: the page says why.
        self.vcenters_without_templates = [vc for vc in vcenters if vc.pk not in with_templates]
        self.fields["template"].lookup = VirtualMachine.objects.filter(vcenter__in=vcenters, gone=False)  # type: ignore[attr-defined]
        self.fields["profile"].queryset = Profile.objects.filter(project__in=projects)  # type: ignore[attr-defined]
        datacenter = str((self.data if self.is_bound else self.initial).get("datacenter") or "")
        datacenters = sorted(placement.datacenters.items(), key=lambda dc: dc[1]) if placement else []
        self.fields["datacenter"].choices = [("", "Any"), *datacenters]  # type: ignore[attr-defined]
        redraw = {
            "hx-get": reverse("hosts:provision_new"),
            "hx-include": "closest form",
            "hx-target": "#placement",
            "hx-swap": "outerHTML",
            # A later pick wins: an earlier redraw still under way is dropped.
            "hx-sync": "closest form:replace",
        }
        self.fields["vcenter"].widget.attrs.update(redraw)
        self.fields["datacenter"].widget.attrs.update(redraw)
        for name, section in PLACEMENT_FIELDS:
            groups = placement.grouped(section, datacenter) if placement else []
            self.fields[name].choices = [AS_TEMPLATE, *groups]  # type: ignore[attr-defined]

    def placement_fields(self) -> list[forms.BoundField]:
        return [self["datacenter"], *(self[name] for name, _ in PLACEMENT_FIELDS)]

    def clean_profile(self) -> Profile | None:
        return _allowed_profile(self.cleaned_data.get("profile"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        vcenter, template, project = data.get("vcenter"), data.get("template"), data.get("project")
        if vcenter and template and template.vcenter_id != vcenter.pk:
            self.add_error("template", "That VM is in another vCenter.")
        elif project and template:
            try:
                provision_checks.check_template(
                    ProvisionRequest(project=project, vcenter=template.vcenter, template=template.moref)
                )
            except provision_checks.ProvisionError as exc:
                self.add_error("template", str(exc))
        if (
            vcenter
            and project
            and not ProvisionQuota.objects.filter(project=project, vcenters=vcenter).exists()
        ):
            self.add_error("vcenter", f"Project {project} may not clone in this vCenter.")
        profile = data.get("profile")
        if profile and project and profile.project_id != project.pk:
            self.add_error("profile", "That profile belongs to another project.")
        if data.get("name_pattern") and data.get("count"):
            try:
                provision_checks.expand_names(data["name_pattern"], data["count"])
            except provision_checks.ProvisionError as exc:
                self.add_error("name_pattern", str(exc))
        if self.placement is not None and template is not None:
            self._check_placement(self.placement, data, template)
        return data

    def _check_placement(self, placement: Placement, data: dict[str, Any], template: VirtualMachine) -> None:
        """One datacenter for everything chosen; a datastore and network the cluster reaches."""
        chosen = {
            name: placement.find(section, data[name]) for name, section in PLACEMENT_FIELDS if data.get(name)
        }
        datacenters = {place.datacenter for place in chosen.values() if place}
        if data.get("datacenter"):
            datacenters.add(data["datacenter"])
        if len(datacenters) > 1:
            raise forms.ValidationError("The pool, folder, network and datastore must be in one datacenter.")
        pool = chosen.get("resource_pool")
        if pool is not None:
            reach = placement.reach.get(pool.compute, set())
            cluster = placement.computes.get(pool.compute, "the cluster")
            for name in ("network", "datastore"):
                place = chosen.get(name)
                if place is not None and place.moref not in reach:
                    self.add_error(name, f"The hosts of {cluster} do not reach {place.label}.")
        target = next(iter(datacenters), "")
        template_dc = template.datacenter.moref if template.datacenter_id else ""  # type: ignore[union-attr]
        if target and target != template_dc:
            # Into another datacenter nothing can be "as the template": a pool and a
            # datastore there, and a folder there (its VM folder unless one was picked).
            where = placement.datacenters.get(target, target)
            for name in ("resource_pool", "datastore"):
                if not data.get(name):
                    self.add_error(name, f"The template is in another datacenter: pick one in {where}.")
            if not data.get("folder"):
                data["folder"] = placement.vm_roots.get(target, "")

    def placement_names(self) -> dict[str, str]:
        """What the request page shows of the placement, and the network's kind for the clone."""
        data, placement = self.cleaned_data, self.placement
        if placement is None:
            return {}
        names: dict[str, str] = {}
        for name, section in PLACEMENT_FIELDS:
            place = placement.find(section, data.get(name) or "")
            if place is not None:
                names[name] = place.label
                names["datacenter"] = placement.datacenters.get(place.datacenter, "")
                if name == "network":
                    names["network_kind"] = place.kind
        return names


class KickstartForm(ClarityForm, forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(max_length=63, help_text="The new host's name.")
    profile = forms.ModelChoiceField(queryset=Profile.objects.none(), required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        projects = access.projects(user, "provision.request")
        self.fields["project"].queryset = projects  # type: ignore[attr-defined]
        self.fields["profile"].queryset = Profile.objects.filter(project__in=projects)  # type: ignore[attr-defined]

    def clean_profile(self) -> Profile | None:
        return _allowed_profile(self.cleaned_data.get("profile"))


class QuotaForm(ClarityForm, forms.Form):
    """A project's provisioning quota (Admins): hosts.provision.services.set_quota saves it."""

    vcenters = forms.ModelMultipleChoiceField(
        queryset=VCenter.objects.filter(enabled=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="vCenters it may clone in",
        help_text="None: no cloning from templates (kickstart installs still work).",
    )
    max_vms = forms.IntegerField(min_value=0, max_value=10000, label="Most VMs")
    max_cpus = forms.IntegerField(min_value=0, max_value=100000, label="Most CPUs")
    max_memory_mb = forms.IntegerField(min_value=0, max_value=2**31 - 1, label="Most memory (MB)")
    templates = forms.ModelMultipleChoiceField(
        queryset=VirtualMachine.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Extra templates",
        help_text="Photon OS VMs of the chosen vCenters that vSphere does not mark as templates "
        "(those are offered anyway). Choose the vCenters and save to list theirs.",
    )

    def __init__(self, data: Any = None, *, quota: ProvisionQuota | None) -> None:
        defaults = quota or ProvisionQuota()
        initial = {name: getattr(defaults, name) for name in ("max_vms", "max_cpus", "max_memory_mb")}
        if quota is not None:
            initial |= {"vcenters": list(quota.vcenters.all()), "templates": list(quota.templates.all())}
        super().__init__(data, initial=initial)
        # The VMs that may be listed are those of the vCenters chosen: as posted, else as saved.
        if self.is_bound:
            values = (
                self.data.getlist("vcenters") if hasattr(self.data, "getlist") else self.data.get("vcenters")
            )
            posted = [pk for pk in values or [] if str(pk).isdigit()]
            chosen = VCenter.objects.filter(enabled=True, pk__in=posted)
        else:
            chosen = VCenter.objects.filter(
                enabled=True, pk__in=[vc.pk for vc in initial.get("vcenters", [])]
            )
        candidates = provision_checks.quota_candidates(chosen)
        self.fields["templates"].queryset = candidates  # type: ignore[attr-defined]
        self.fields["templates"].choices = offer.choices(candidates)  # type: ignore[attr-defined]
