"""Which lines of a change's diff a Project admin must not miss when approving it.

A line that changes who may log in, how, or what a host exposes (sshd
authentication, listeners, firewall rules that let traffic in, the Docker
engine's TCP listener and TLS, registries pulled from without TLS) is marked
with a short reason. Pure text in, marks out: the change page, the approvals
queue and the drift list all call ``mark``; the templates escape what it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hosts.changes.files import daemon_json, docker, firewall, sshd, sysctl


@dataclass(frozen=True)
class DiffLine:
    text: str
    #: Why this line needs a careful look ("" for an ordinary line).
    reason: str = ""
    #: What the line is, for its colour: "file" (the ---/+++ header), "hunk" (@@), "add",
    #: "del", or "" for context and anything else.
    kind: str = ""


#: sshd_config keywords (lower case) -> what a changed line of it does.
SSHD = {
    "permitrootlogin": "changes whether root may log in",
    "passwordauthentication": "changes whether passwords open accounts",
    "permitemptypasswords": "changes whether empty passwords open accounts",
    "pubkeyauthentication": "changes whether keys open accounts",
    "kbdinteractiveauthentication": "changes how users authenticate",
    "challengeresponseauthentication": "changes how users authenticate",
    "authenticationmethods": "changes how users authenticate",
    "usepam": "changes how users authenticate",
    "allowusers": "changes who may log in",
    "allowgroups": "changes who may log in",
    "denyusers": "changes who may log in",
    "denygroups": "changes who may log in",
    "authorizedkeysfile": "changes which keys open accounts",
    "authorizedkeyscommand": "runs a command as root to pick the keys that open accounts",
    "authorizedprincipalsfile": "changes which certificates open accounts",
    "trustedusercakeys": "changes which certificates open accounts",
    "forcecommand": "runs a command on every login",
    "permituserenvironment": "lets a login set its own environment",
    "listenaddress": "changes where SSH listens",
    "port": "changes where SSH listens",
    "gatewayports": "changes what forwarded ports expose",
    "permittunnel": "changes what SSH may tunnel",
    "banner": "a file sshd shows to anyone before login",
    "match": "settings for some logins only, to the end of the file",
    "include": "reads more configuration from other files",
}
#: daemon.json options -> what a changed line in them does.
DAEMON_JSON = {
    "insecure-registries": "Docker pulls from these without checking TLS",
    "registry-mirrors": "changes where Docker pulls images from",
    "hosts": "changes where the Docker engine listens",
    "tls": "changes the Docker engine's TLS",
    "tlsverify": "changes whether the Docker engine checks client certificates",
    "tlscacert": "changes which certificates open the Docker engine",
    "tlscert": "changes the Docker engine's TLS",
    "tlskey": "changes the Docker engine's TLS",
    "authorization-plugins": "changes who may use the Docker engine",
    "userns-remap": "changes how container root maps to host users",
    "data-root": "moves the Docker engine's state",
    "runtimes": "changes the programs Docker runs containers with",
    "default-runtime": "changes the program Docker runs containers with",
}
#: A diff line's first character -> its kind (hunk headers and file headers are found apart).
_KIND = {"+": "add", "-": "del"}
_JSON_KEY = re.compile(r'^(\s*)"([^"]+)"\s*:')
_SYSCTL = re.compile(r"^\s*-?([^=#;\s]+)\s*=")


def mark(diff: str) -> list[DiffLine]:
    """Every line of a unified diff (one or several files), the risky ones with their reason."""
    lines = diff.splitlines()
    result: list[DiffLine] = []
    path = ""
    json_key, json_indent = "", -1
    for index, line in enumerate(lines):
        header = line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ ")
        if header or line.startswith("+++ "):
            if line.startswith("+++ "):
                path = _path(line[4:])
                json_key, json_indent = "", -1
            result.append(DiffLine(line, kind="file"))
            continue
        sign = line[:1]
        content = line[1:] if sign in ("+", "-", " ") else line
        if path == daemon_json.PATH:
            found = _JSON_KEY.match(content)
            if found and (json_indent < 0 or len(found[1]) <= json_indent):
                json_key, json_indent = found[2], len(found[1])
        reason = _reason(path, sign, content, json_key) if sign in ("+", "-") else ""
        kind = "hunk" if line.startswith("@@") else _KIND.get(sign, "")
        result.append(DiffLine(line, reason, kind))
    return result


def _path(name: str) -> str:
    name = name.split("\t", 1)[0].strip()
    return name[1:] if name[:2] in ("a/", "b/") else name


def _reason(path: str, sign: str, content: str, json_key: str) -> str:
    stripped = content.strip()
    if not stripped or stripped.startswith("#"):
        return ""
    if path == sshd.PATH:
        keyword = re.split(r"[\s=]+", stripped, maxsplit=1)[0].lower()
        return SSHD.get(keyword, "")
    if path == firewall.PATH:
        return _firewall(sign, stripped)
    if path == docker.DROP_IN:
        return _docker_api(stripped)
    if path == daemon_json.PATH:
        return DAEMON_JSON.get(json_key, "")
    if path == sysctl.PATH:
        found = _SYSCTL.match(stripped)
        if not found:
            return ""
        key = found[1]
        if sysctl.refusal(key):
            return "a kernel parameter off the portal's list"
        if key.endswith((".ip_forward", ".forwarding")):
            return "routes traffic between networks"
        return ""
    if path.startswith(docker.TLS_DIR + "/") and "BEGIN CERTIFICATE" in stripped:
        return "changes which certificates the Docker engine trusts"
    return ""


def _firewall(sign: str, rule: str) -> str:
    opened = firewall.accepted_port(rule)
    if opened:
        port = f"{opened[0]}/{opened[1]}"
        return f"opens {port} to everyone" if sign == "+" else f"closes {port}"
    tokens = rule.split()
    if rule.startswith(":INPUT") or rule.startswith("-P INPUT"):
        return "changes what the firewall does with incoming traffic by default"
    if tokens[:2] in (["-A", "INPUT"], ["-I", "INPUT"]):
        return "changes what the firewall lets in"
    if "DNAT" in tokens or "REDIRECT" in tokens:
        return "forwards a port"
    return ""


def _docker_api(line: str) -> str:
    if not line.startswith("ExecStart="):
        return ""
    if "tcp://" in line:
        if "--tlsverify" not in line or "--tls=false" in line:
            return "the Docker engine on TCP without TLS: root for anyone who reaches the port"
        return "the Docker engine listens on TCP (TLS, client certificates)"
    return "changes how the Docker engine starts" if line != "ExecStart=" else ""
