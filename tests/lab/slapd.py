"""The lab's directory: Debian's OpenLDAP ``slapd`` in a directory of its own.

Its own ``slapd.conf`` and MDB database under ``workdir/slapd``, run as the current user
in the foreground (``-d 0``) on 127.0.0.1 only: plain LDAP (StartTLS offered) and
LDAPS, with a server certificate from a lab CA (:mod:`tests.lab.pki`). The machine's
own slapd service is never touched. Seeded with :data:`SEED` by ``slapadd`` before it
starts, so it answers with everything in place:

    people   alice (in ops-leads, nested in ops), bob (in ops), carol (in portal-admins),
             dora (in ops, but disabled: ``employeeType: disabled``; the portal is told to
             refuse accounts matching ``(employeeType=disabled)``, the lab's stand-in for
             AD's ACCOUNTDISABLE bit or OpenLDAP ppolicy's ``pwdAccountLockedTime``)
    groups   groupOfNames: ops (members: bob, dora and the group ops-leads), ops-leads,
             portal-admins, viewers (alice)
    service  cn=portal,ou=service: the bind account the portal searches with (reads all,
             no passwords); cn=admin is the rootdn tests change the directory with.

``up(workdir)`` returns the section below; ``down(workdir)`` stops it and removes all.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.lab import common, pki

NAME = "slapd"
BASE = "dc=lab,dc=example"
ROOT_DN = f"cn=admin,{BASE}"
BIND_DN = f"cn=portal,ou=service,{BASE}"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
USERS = ("alice", "bob", "carol", "dora")
DISABLED_FILTER = "(employeeType=disabled)"
START_TIMEOUT = 20.0

CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {home}/slapd.pid
argsfile {home}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {home}/tls/ca.pem
TLSCertificateFile {home}/tls/slapd.pem
TLSCertificateKeyFile {home}/tls/slapd-key.pem

database mdb
maxsize 67108864
suffix "{base}"
rootdn "{root_dn}"
rootpw {root_password}
directory {home}/data
# Passwords: checked at bind, never read (the bind account included).
access to attrs=userPassword
    by anonymous auth
    by self =xw
    by * none
access to *
    by dn.exact="{bind_dn}" read
    by self read
    by * none
"""


def _person(uid: str, first: str, last: str, password: str, *, extra: str = "") -> str:
    return (
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {first} {last}\n"
        f"givenName: {first}\nsn: {last}\nmail: {uid}@lab.example\nuserPassword: {password}\n{extra}\n"
    )


def _group(cn: str, *members: str) -> str:
    lines = "".join(f"member: {m}\n" for m in members)
    return f"dn: cn={cn},{GROUPS}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}\n"


def seed(passwords: dict[str, str], bind_password: str) -> str:
    def user(uid: str) -> str:
        return f"uid={uid},{PEOPLE}"

    return (
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: lab\no: Photon Portal lab\n\n"
        + "".join(
            f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
            for ou in ("people", "groups", "service")
        )
        + f"dn: {BIND_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: portal\nuserPassword: {bind_password}\n\n"
        + _person("alice", "Alice", "Lead", passwords["alice"])
        + _person("bob", "Bob", "Operator", passwords["bob"])
        + _person("carol", "Carol", "Admin", passwords["carol"])
        + _person("dora", "Dora", "Gone", passwords["dora"], extra="employeeType: disabled\n")
        + _group("ops-leads", user("alice"))
        + _group("ops", user("bob"), user("dora"), f"cn=ops-leads,{GROUPS}")
        # groupOfNames needs a member: a placeholder keeps a group that tests empty valid.
        + _group("portal-admins", user("carol"), f"cn=nobody,{BASE}")
        + _group("viewers", user("alice"))
    )


def up(workdir: Path) -> dict[str, Any]:
    """Start slapd, seeded; returns its URLs, CA, bind account, people and groups."""
    slapd = common.require_binary("slapd", "slapd")
    slapadd = common.require_binary("slapadd", "slapd")
    common.require_binary("ldapmodify", "ldap-utils")
    down(workdir)
    home = workdir / NAME
    (home / "data").mkdir(parents=True)
    try:
        ca = pki.CertificateAuthority.create(home / "tls", "Photon Portal lab directory CA")
        ca.issue_server(home / "tls", "slapd", algorithm="rsa")
        root_password = secrets.token_urlsafe(12)
        bind_password = secrets.token_urlsafe(12)
        passwords = {uid: secrets.token_urlsafe(12) for uid in USERS}
        conf = home / "slapd.conf"
        conf.write_text(
            CONF.format(home=home, base=BASE, root_dn=ROOT_DN, root_password=root_password, bind_dn=BIND_DN)
        )
        conf.chmod(0o600)
        (home / "seed.ldif").write_text(seed(passwords, bind_password))
        subprocess.run(
            [slapadd, "-f", str(conf), "-l", str(home / "seed.ldif")],
            check=True,
            capture_output=True,
            timeout=60,
        )
        port, tls_port, other_port = common.free_port(), common.free_port(), common.free_port()
        # 127.0.0.2 is loopback too, but not in the certificate: a host name that does not match.
        urls = f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/ ldaps://127.0.0.2:{other_port}/"
        proc = common.spawn(NAME, [slapd, "-f", str(conf), "-h", urls, "-d", "0"], workdir)

        def answers() -> bool:
            if proc.poll() is not None:
                raise common.LabUnavailable(f"slapd exited:\n{common.log_tail(workdir, NAME)}")
            return all(
                common.port_open(host, p)
                for host, p in (("127.0.0.1", port), ("127.0.0.1", tls_port), ("127.0.0.2", other_port))
            )

        common.wait_until(answers, timeout=START_TIMEOUT, what="slapd")
    except subprocess.CalledProcessError as exc:
        down(workdir)
        raise common.LabUnavailable(f"slapadd failed: {exc.stderr.decode(errors='replace')}") from exc
    except BaseException:
        down(workdir)
        raise
    info: dict[str, Any] = {
        "url": f"ldap://127.0.0.1:{port}",
        "ldaps_url": f"ldaps://127.0.0.1:{tls_port}",
        "wrong_name_url": f"ldaps://127.0.0.2:{other_port}",
        "port": port,
        "tls_port": tls_port,
        "ca": str(ca.cert_path),
        "ca_pem": ca.cert_path.read_text(),
        "base": BASE,
        "people": PEOPLE,
        "groups": GROUPS,
        "bind_dn": BIND_DN,
        "bind_password": bind_password,
        "root_dn": ROOT_DN,
        "root_password": root_password,
        "passwords": passwords,
        "disabled_filter": DISABLED_FILTER,
    }
    (home / "info.json").write_text(json.dumps(info, indent=2))
    (home / "info.json").chmod(0o600)
    return info


def modify(info: dict[str, Any], ldif: str) -> None:
    """Change the running directory as its rootdn (``ldapmodify``), as an operator would."""
    subprocess.run(
        ["ldapmodify", "-x", "-H", info["url"], "-D", info["root_dn"], "-w", info["root_password"]],
        input=ldif.encode(),
        check=True,
        capture_output=True,
        timeout=30,
    )


def remove_member(info: dict[str, Any], group_cn: str, member_dn: str) -> None:
    modify(
        info, f"dn: cn={group_cn},{info['groups']}\nchangetype: modify\ndelete: member\nmember: {member_dn}\n"
    )


def add_member(info: dict[str, Any], group_cn: str, member_dn: str) -> None:
    modify(
        info, f"dn: cn={group_cn},{info['groups']}\nchangetype: modify\nadd: member\nmember: {member_dn}\n"
    )


def down(workdir: Path) -> None:
    """Stop slapd and remove its files; safe to call twice or after a failed ``up``."""
    common.stop_spawned(workdir, NAME)
    shutil.rmtree(workdir / NAME, ignore_errors=True)
    (workdir / "logs" / f"{NAME}.log").unlink(missing_ok=True)
    for directory in (workdir / "logs", workdir / "pids", workdir):
        with contextlib.suppress(OSError):
            directory.rmdir()  # only if nothing else lives there
