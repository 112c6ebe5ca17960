"""What a new host is given to boot with: its own SSH key, a one-time enrollment token,
a server certificate and client CA (hosts.ca), as NoCloud seed files, in
guestinfo, or on a seed ISO attached to its VM on vSphere.
"""

from __future__ import annotations

from hosts import ca as portal_ca
from hosts import ssh_keys
from hosts.models import ProvisionedVm
from hosts.provision import cloud_config, tokens
from hosts.vsphere import client as vsphere
from hosts.vsphere.client import upload as vsphere_upload
from portal import audit


def issue_seed(pvm: ProvisionedVm, enroll_base_url: str) -> tuple[cloud_config.HostSeed, str]:
    """A fresh token, server certificate, client CA and SSH key for ``pvm`` (the CA and the
    key kept on it, encrypted, until enrollment); the server certificate's fingerprint."""
    token = tokens.issue_token(pvm)
    issued = portal_ca.issue_server([pvm.name])
    client_ca = portal_ca.new_client_ca(pvm.name)
    ssh_key = ssh_keys.new_ssh_key(pvm.name)
    pvm.client_ca_cert, pvm.client_ca_key, pvm.ssh_private_key = (
        client_ca.cert,
        client_ca.key,
        ssh_key.private,
    )
    pvm.save(update_fields=["client_ca_cert", "client_ca_key", "ssh_private_key"])
    seed = cloud_config.HostSeed(
        instance_id=pvm.instance_id,
        hostname=pvm.name,
        ssh_public_key=ssh_key.public,
        client_ca_pem=client_ca.cert,
        server_cert_pem=issued.cert,
        server_key_pem=issued.key,
        enroll_url=tokens.url(enroll_base_url, token),
    )
    return seed, portal_ca.fingerprint(issued.cert)


def seed_for(pvm: ProvisionedVm, enroll_base_url: str) -> dict[str, bytes]:
    """The NoCloud seed files for ``pvm`` (its earlier token and certificate stop working)."""
    seed, fingerprint = issue_seed(pvm, enroll_base_url)
    pvm.tls_fingerprint = fingerprint
    pvm.save(update_fields=["tls_fingerprint"])
    audit.record("provision.seed_iso", obj=pvm, project=pvm.request.project)
    profile = pvm.request.profile.settings if pvm.request.profile else {}
    return cloud_config.seed_files(seed, profile)


# --- the seed ISO on vSphere ---------------------------------------------------------------------

SEED_FOLDER = "photon-portal-seeds"


def attach_seed_iso(pvm: ProvisionedVm, si: vsphere.ServiceInstance, iso: bytes) -> str:
    """Upload ``iso`` beside the VM and connect its CD-ROM to it; returns ``[datastore] path``."""
    path = f"{SEED_FOLDER}/{pvm.name}-seed.iso"
    file_name = vsphere_upload.attach_iso(
        pvm.request.vcenter, si, pvm.moref, pvm.request.datastore, path, iso
    )
    audit.record("provision.attach_seed_iso", obj=pvm, project=pvm.request.project, after={"file": file_name})
    return file_name
