"""Pull logins for deploys: the registry app tells the fleet (``hosts.fleet.deploy.PULL_LOGINS``,
registered in ``RegistryConfig.ready``) which login an engine gets to pull an image from a
registry the portal knows."""

from __future__ import annotations

from hosts.fleet.deploy import PullLogin, registry_host, repository_of, unverified_engine
from hosts.models import Host

from .browse import pull_token
from .clients.errors import RegistryError
from .models import Registry


def login_for(host: Host, image: str) -> PullLogin | None:
    """The login of a registry added to the portal, shared with the host's project, that
    holds ``image``, for a verified engine only. Where the registry has a token service,
    a short-lived token to pull that one repository, never the password."""
    where = registry_host(image)
    if not where:
        return None
    candidates = Registry.objects.filter(projects=host.project_id).exclude(auth=Registry.Auth.ANONYMOUS)
    registry = next((r for r in candidates if r.host.lower() == where and r.username), None)
    if registry is None:
        return None
    why = unverified_engine(host)
    if why:
        return PullLogin(
            withheld=f"The portal sends the login of registry {registry.name} only to engines reached "
            "over TLS with a pinned certificate or over SSH with a pinned host key, and "
            f"{why}: pulling without it."
        )
    try:
        token = pull_token(registry, repository_of(image))
    except RegistryError as exc:
        return PullLogin(withheld=f"The token service of registry {registry.name} gave no pull token: {exc}.")
    if token:
        return PullLogin({"registrytoken": token, "serveraddress": registry.host})
    return PullLogin(
        {
            "username": registry.username,
            "password": str(registry.password or ""),
            "serveraddress": registry.host,
        }
    )
