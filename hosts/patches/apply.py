"""The apply engine of a patch change on one host: record, update, verify, reboot when the plan
says so, and roll back to the recorded versions when anything is not as planned.

1. **Record**: which tool the host has (tdnf, else dnf: :data:`.commands.DETECT`), its
   releasever, ``rpm -qa`` (:data:`.installed.RPM_COMMAND`) and its Docker engine's state. A
   plan made for other versions than those installed now is refused before anything runs.
2. **Update**: the command :func:`.commands.command_for` builds (exact NEVRAs).
3. **Verify** from ``rpm -qa`` again: every planned package at its planned build, nothing else
   moved (:func:`.verify.package_problems`). The tool's exit code counts (non-zero is a
   failure); its text is kept as reported text only, except librpm's scriptlet-failure warning
   (:func:`.verify.scriptlet_failures`, which explains why).
4. **Reboot** when the plan needs it (:mod:`.reboot`): ``systemctl reboot``, wait for the host
   to come back with its pinned key, then verify the packages again, the engine ON and the
   containers with a restart policy running again.
5. **Roll back** on any failure: downgrade (install, remove) every package that moved to the
   recorded build, verify with ``rpm -qa`` that the host is as recorded, and reboot again if the
   host had rebooted into the update. The final state is ``applied``, ``rolled back`` or
   ``rollback failed: <name.arch, ...>``; ``failed: <why>`` when the host could not be
   verified (unreachable, refused the plan before anything changed, did not come back).

Each step is handed to ``progress`` as it ends, so a caller can stream it live. The functions
take an :class:`hosts.ssh.Access` (not a connection): a reboot drops every connection.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from hosts import ssh
from hosts.patches import commands, installed, reboot, verify
from hosts.patches.plan import HostPatchPlan
from hosts.patches.records import Nevra

APPLIED = "applied"
ROLLED_BACK = "rolled back"
NOTHING = "nothing to apply"
#: Seconds one tdnf run may take (downloads included).
COMMAND_TIMEOUT = 1800.0
#: Seconds containers get to run again once the engine is back.
CONTAINER_TIMEOUT = 120.0
#: How much of a tool's text a step keeps: the end, where the error is.
OUTPUT_LIMIT = 4000


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    #: What the portal concluded, for a person.
    detail: str
    command: str = ""
    exit_status: int | None = None
    #: The tool's own text: reported, never parsed for a decision (but see verify.scriptlet_failures).
    output: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "command": self.command,
            "exit_status": self.exit_status,
            "output": self.output,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(**data)


@dataclass
class ApplyResult:
    host: str
    state: str = ""
    steps: list[Step] = field(default_factory=list)
    tool: str = ""
    before: tuple[Nevra, ...] = ()
    after: tuple[Nevra, ...] = ()
    rebooted: bool = False

    @property
    def ok(self) -> bool:
        return self.state in (APPLIED, NOTHING)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "steps": [s.to_json() for s in self.steps],
            "tool": self.tool,
            "before": [p.to_json() for p in self.before],
            "after": [p.to_json() for p in self.after],
            "rebooted": self.rebooted,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApplyResult:
        return cls(
            host=data["host"],
            state=data["state"],
            steps=[Step.from_json(s) for s in data["steps"]],
            tool=data["tool"],
            before=tuple(Nevra.from_json(p) for p in data["before"]),
            after=tuple(Nevra.from_json(p) for p in data["after"]),
            rebooted=data["rebooted"],
        )


Progress = Callable[[Step], Awaitable[None] | None]


class _Stop(Exception):
    """Ends the run with ``state``."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


def _tail(result: asyncssh.SSHCompletedProcess) -> str:
    return ssh.output(result)[-OUTPUT_LIMIT:]


class _Run:
    def __init__(
        self,
        access: ssh.Access,
        plan: HostPatchPlan,
        progress: Progress | None,
        reboot_timeout: float,
        command_timeout: float,
    ) -> None:
        self.access, self.plan, self.progress = access, plan, progress
        self.reboot_timeout, self.command_timeout = reboot_timeout, command_timeout
        self.result = ApplyResult(host=plan.host or access.name)
        self.releasever = ""
        self.engine_before = reboot.EngineState(False, {})
        #: Set once the update command was sent: from then on a failure means rolling back.
        self.changing = False

    async def step(self, name: str, ok: bool, detail: str, **kwargs: Any) -> Step:
        step = Step(name, ok, detail, **kwargs)
        self.result.steps.append(step)
        if self.progress is not None:
            answer = self.progress(step)
            if inspect.isawaitable(answer):
                await answer
        return step

    async def rpm(self, conn: asyncssh.SSHClientConnection) -> tuple[Nevra, ...]:
        result = await ssh.run(conn, installed.RPM_COMMAND, timeout=120)
        if result.exit_status != 0:
            raise ssh.SSHError(f"rpm -qa failed: {ssh.output(result)[-500:]}")
        packages = tuple(installed.parse_rpm_output(str(result.stdout or "")))
        self.result.after = packages
        return packages

    async def go(self) -> ApplyResult:
        if self.plan.empty:
            await self.step("plan", True, "the plan moves no package: nothing to run")
            self.result.state = NOTHING
            return self.result
        try:
            await self._apply()
            self.result.state = APPLIED
        except _Stop as stop:
            self.result.state = stop.state
        except ssh.SSHError as exc:
            # Lost the host: what is installed there is not known, so nothing can be claimed.
            when = (
                "during the update: its packages are not verified" if self.changing else "before any change"
            )
            await self.step("connection", False, f"{exc} ({when})")
            self.result.state = f"failed: {exc}"
        return self.result

    # ------------------------------------------------------------ forward

    async def _apply(self) -> None:
        async with ssh.connect(self.access) as conn:
            await self._record(conn)
            command = await self._command()
            self.changing = True
            update = await ssh.run(conn, command, timeout=self.command_timeout)
            after = await self.rpm(conn)
            problems = verify.package_problems(self.result.before, after, self.plan)
            # Each stream on its own lines: joined, a line of one could run into the other's.
            streams = "\n".join([str(update.stdout or ""), str(update.stderr or "")])
            problems += verify.scriptlet_failures(streams, [t.target for t in self.plan.transitions])
            if update.exit_status != 0:
                problems.insert(0, f"{self.result.tool} exited with {update.exit_status}")
            await self.step(
                "update",
                not problems,
                "; ".join(problems) or "every planned package is at its planned build, nothing else moved",
                command=command,
                exit_status=update.exit_status,
                output=_tail(update),
            )
            if problems:
                await self._roll_back(conn)
            if not self.plan.reboot:
                engine = await reboot.engine_state(conn)
                if self.engine_before.active and not engine.active:
                    await self.step("verify", False, "the Docker engine stopped running during the update")
                    await self._roll_back(conn)
                return
        await self._reboot_and_verify()

    async def _record(self, conn: asyncssh.SSHClientConnection) -> None:
        found = await ssh.run(conn, commands.DETECT, timeout=30)
        try:
            self.result.tool = commands.tool_from_path(str(found.stdout or "").strip().splitlines()[0])
        except (commands.CommandError, IndexError):
            await self.step("detect", False, "neither tdnf nor dnf is installed", command=commands.DETECT)
            raise _Stop("failed: neither tdnf nor dnf is installed") from None
        facts = await ssh.run(conn, installed.FACTS_COMMAND, timeout=30)
        self.releasever = str(facts.stdout or "").strip().partition("\n")[0].strip()
        await self.step(
            "detect",
            True,
            f"{self.result.tool}, releasever {self.releasever or 'unknown'}",
            command=commands.DETECT,
        )
        self.result.before = await self.rpm(conn)
        self.engine_before = await reboot.engine_state(conn)
        changed = verify.stale(self.result.before, self.plan)
        if changed:
            await self.step("record", False, "the host changed since the plan: " + "; ".join(changed))
            raise _Stop("failed: the host changed since the plan was made; nothing was run")
        engine = (
            f"; Docker engine running {len(self.engine_before.running)} container(s)"
            if self.engine_before.active
            else ""
        )
        await self.step("record", True, f"{len(self.result.before)} packages recorded{engine}")

    async def _command(self) -> str:
        try:
            return commands.command_for(self.plan, self.result.tool, self.releasever)
        except commands.CommandError as exc:
            await self.step("update", False, f"{exc}; nothing was run")
            raise _Stop(f"failed: {exc}") from None

    async def _reboot_and_verify(self) -> None:
        reasons = "; ".join(self.plan.reboot_reasons)
        marker = reboot.marker_path()
        async with ssh.connect(self.access) as conn:
            refused = await reboot.start_reboot(conn, marker)
            await self.step(
                "reboot", not refused, refused or f"rebooting: {reasons}", command=reboot.REBOOT_COMMAND
            )
            if refused:
                await self._roll_back(conn)
        self.result.rebooted = True
        problem, state = await reboot.wait_for_return(
            self.access, marker, engine=self.engine_before.active, timeout=self.reboot_timeout
        )
        await self.step(
            "wait", not problem, problem or "the host is back: its pinned key answers, it restarted"
        )
        if problem and state is None:
            # Never reached after the reboot: nothing to roll back with.
            raise _Stop(f"failed: {problem}")
        problems = [problem] if problem else []
        if self.engine_before.active and not problem:
            missing, could_not = await reboot.wait_for_containers(
                self.access, self.engine_before, timeout=CONTAINER_TIMEOUT
            )
            problems += [f"container {name} is not running again" for name in missing]
            note = f"; not restarted, no restart policy: {', '.join(could_not)}" if could_not else ""
            await self.step(
                "engine",
                not missing,
                ("; ".join(problems) or "the Docker engine runs and its containers run again") + note,
            )
        async with ssh.connect(self.access) as conn:
            after = await self.rpm(conn)
            package_problems = verify.package_problems(self.result.before, after, self.plan)
            await self.step(
                "verify",
                not package_problems,
                "; ".join(package_problems)
                or "after the reboot every planned package is at its planned build",
            )
            if problems or package_problems:
                await self._roll_back(conn)

    # ------------------------------------------------------------ rollback

    async def _roll_back(self, conn: asyncssh.SSHClientConnection) -> None:
        """Put the recorded packages back and verify; always ends the run (raises _Stop)."""
        now = await self.rpm(conn)
        plan = verify.restore(self.result.before, now)
        tool, releasever = self.result.tool, self.releasever
        for verb, packages, build in (
            ("downgrade", plan.downgrade, commands.downgrade_command),
            ("install", plan.install, commands.install_command),
            ("remove", plan.remove, commands.remove_command),
        ):
            if not packages:
                continue
            command = build(tool, releasever, packages)
            result = await ssh.run(conn, command, timeout=self.command_timeout)
            await self.step(
                f"rollback: {verb}",
                result.exit_status == 0,
                f"{verb} {', '.join(str(p) for p in packages)}",
                command=command,
                exit_status=result.exit_status,
                output=_tail(result),
            )
        left = verify.differing(self.result.before, await self.rpm(conn))
        await self.step(
            "verify rollback",
            not left,
            f"not as recorded: {', '.join(left)}" if left else "every package is at its recorded build",
        )
        if left:
            raise _Stop(f"rollback failed: {', '.join(left)}")
        if self.result.rebooted:
            await self._reboot_again(conn)
        raise _Stop(ROLLED_BACK)

    async def _reboot_again(self, conn: asyncssh.SSHClientConnection) -> None:
        """The host booted into the update; the recorded versions run only after another reboot."""
        marker = reboot.marker_path()
        refused = await reboot.start_reboot(conn, marker)
        if not refused:
            refused, _ = await reboot.wait_for_return(
                self.access, marker, engine=self.engine_before.active, timeout=self.reboot_timeout
            )
        await self.step(
            "reboot after rollback", not refused, refused or "the host restarted on the recorded versions"
        )
        if refused:
            raise _Stop(f"rolled back, but the host did not restart on the recorded versions: {refused}")


async def apply_host(
    access: ssh.Access,
    plan: HostPatchPlan,
    *,
    progress: Progress | None = None,
    reboot_timeout: float = reboot.REBOOT_TIMEOUT,
    command_timeout: float = COMMAND_TIMEOUT,
) -> ApplyResult:
    """Apply ``plan`` on the host ``access`` reaches; never raises for what happens on the host."""
    return await _Run(access, plan, progress, reboot_timeout, command_timeout).go()
