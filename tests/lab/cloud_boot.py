"""The lab's boot emulation for provisioned VMs: vcsim runs no guest, so for each new
VM a Photon-like host (tests.lab.photon_hosts) boots and real cloud-init (Debian's
package) runs inside it through its VMware datasource, fed that VM's guestinfo
keys exactly as the clone set them. A kickstart install is emulated the same way:
what Photon's installer leaves on the disk (:func:`install`), then a first boot
through the NoCloud datasource.

Without VMware tools the datasource reads guestinfo from ``VMX_GUESTINFO_*``
environment variables, one-to-one with the ``guestinfo.*`` keys. The stages run
by hand in the order a boot runs them (there is no systemd): init --local, init
(new host keys), sshd restarted on those keys, config, final (runcmd restarts
dockerd on its TLS listener, then phone_home posts to the portal).
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import photon_hosts

#: What a Photon image's cloud.cfg says: the VMware datasource, nothing else to probe.
DATASOURCES = "datasource_list: [VMware, None]\n"
#: An installed system's first boot on the seed its kickstart's postinstall left.
NOCLOUD = "datasource_list: [NoCloud, None]\n"
STAGES = (
    ["cloud-init", "init", "--local"],
    ["cloud-init", "init"],
    ["systemctl", "restart", "sshd"],
    ["cloud-init", "modules", "--mode", "config"],
    ["cloud-init", "modules", "--mode", "final"],
)


def up(workdir: Path) -> dict[str, Any]:
    """One full (dockerd) Photon-like host, not yet booted through cloud-init."""
    (host,) = photon_hosts.up(workdir, hosts=1, full_hosts=1)
    address = str(host["address"])
    gateway = str(ipaddress.ip_network(f"{address}/24", strict=False).network_address + photon_hosts.GATEWAY)
    return {**host, "gateway": gateway, "workdir": str(workdir)}


def down(workdir: Path) -> None:
    photon_hosts.down(workdir)


def _init_pid(workdir: Path) -> int:
    """The host's PID 1, as the machine sees it (the only child of its ``unshare``)."""
    (state,) = json.loads((Path(workdir).resolve() / photon_hosts.STATE).read_text())
    children = Path(f"/proc/{state['pid']}/task/{state['pid']}/children").read_text().split()
    return int(children[0])


def in_host(
    host: Mapping[str, Any], argv: list[str], env: Mapping[str, str] | None = None, timeout: float = 120
):  # type: ignore[no-untyped-def]
    """Run ``argv`` as the host's root would: its namespaces, its root, a clean environment."""
    workdir = Path(str(host["workdir"])).resolve()
    root = workdir / "hosts" / str(host["name"]) / "root"
    variables = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
    command = [
        "nsenter", "-t", str(_init_pid(workdir)), "-m", "-u", "-n", "-p",
        "chroot", str(root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in variables.items()), *argv,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def guestinfo_env(guestinfo: Mapping[str, str]) -> dict[str, str]:
    """``guestinfo.userdata.encoding`` -> ``VMX_GUESTINFO_USERDATA_ENCODING``, and so on."""
    env = {"VMX_GUESTINFO": "1"}
    for key, value in guestinfo.items():
        if key.startswith("guestinfo."):
            env["VMX_GUESTINFO_" + key.removeprefix("guestinfo.").replace(".", "_").upper()] = value
    return env


def install(host: Mapping[str, Any], kickstart: Mapping[str, Any]) -> None:
    """What Photon's installer does with a kickstart beyond laying the system down: the
    host name, ``public_key`` in root's authorized keys, the postinstall script run in
    the installed system."""
    steps = (
        f"printf '%s\\n' {shlex.quote(str(kickstart['hostname']))} > /etc/hostname"
        " && mkdir -p /root/.ssh && chmod 700 /root/.ssh"
        f" && printf '%s\\n' {shlex.quote(str(kickstart['public_key']))} >> /root/.ssh/authorized_keys"
    )
    for argv in (["/bin/sh", "-c", steps], ["/bin/sh", "-c", "\n".join(kickstart["postinstall"])]):
        result = in_host(host, argv)
        if result.returncode:
            raise RuntimeError(f"the install step {argv[-1][:80]!r} failed: {result.stderr}")


def tools_report(vm: Any, address: str) -> None:
    """What the guest's VMware Tools do once it is up: report its address to vCenter
    (vcsim runs no tools; it takes the address as a ``SET.guest.ipAddress`` key)."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    option = vim.option.OptionValue(key="SET.guest.ipAddress", value=address)
    WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[option])))


def boot(
    host: Mapping[str, Any], guestinfo: Mapping[str, str], *, datasources: str = DATASOURCES
) -> dict[str, Any]:
    """Run cloud-init's stages in ``host`` on ``guestinfo``; return the datasource that ran and the logs."""
    setup = (
        "mkdir -p /etc/cloud/cloud.cfg.d"
        f" && printf '%s' '{datasources}' > /etc/cloud/cloud.cfg.d/99-photon-lab.cfg"
        " && printf 'LANG=C.UTF-8\\n' > /etc/default/locale"
    )
    result = in_host(host, ["/bin/sh", "-c", setup])
    if result.returncode:
        raise RuntimeError(f"preparing cloud-init failed: {result.stderr}")
    env = guestinfo_env(guestinfo) if guestinfo else {}
    outputs = []
    for argv in STAGES:
        result = in_host(host, argv, env)
        outputs.append(f"$ {' '.join(argv)} -> {result.returncode}\n{result.stdout}{result.stderr}")
        if result.returncode:
            raise RuntimeError("cloud-init boot failed:\n" + "\n".join(outputs))
    datasource = in_host(host, ["cat", "/var/lib/cloud/instance/datasource"]).stdout.strip()
    hostname = in_host(host, ["hostname"]).stdout.strip()
    log = in_host(host, ["tail", "-n", "60", "/var/log/cloud-init.log"]).stdout
    return {"datasource": datasource, "hostname": hostname, "log": "\n".join(outputs) + log}
