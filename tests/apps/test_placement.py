"""Placing an application's replicas on a project's hosts: every rule, its failure message, the reasons."""

from __future__ import annotations

import time

import pytest

from hosts.applications.placement import (
    Candidate,
    GiB,
    MiB,
    Need,
    Placement,
    Plan,
    needs_from,
    parse_memory,
    plan,
)


def host(
    id: int,
    name: str,
    *,
    on: bool = True,
    tags: tuple[str, ...] = (),
    memory: float = 8,
    cpus: float = 4.0,
    containers: int = 0,
    max_containers: int | None = None,
) -> Candidate:
    """A host with ``memory`` GiB free."""
    return Candidate(id, name, on, frozenset(tags), int(memory * GiB), cpus, containers, max_containers)


def pool3() -> list[Candidate]:
    return [host(1, "photon-1", memory=4), host(2, "photon-2", memory=8), host(3, "photon-3", memory=6)]


# --- The plain case -----------------------------------------------------------------------------


def test_one_replica_goes_to_the_host_with_most_free_memory() -> None:
    result = plan([Need("web")], pool3())
    assert result.ok and result.failure == ""
    assert result.placements == (
        Placement("web", 1, 2, "photon-2", "most free memory of 3 hosts (8.0 GiB free)"),
    )
    assert result.hosts_of("web") == ["photon-2"]
    assert result.hosts_of("nothing") == []


def test_memory_is_used_up_as_the_plan_goes() -> None:
    # 3 GiB each: photon-2 (8) takes the first, then photon-3 (6) has more than photon-2's 5 left.
    result = plan([Need("a", memory=3 * GiB), Need("b", memory=3 * GiB)], pool3())
    assert result.hosts_of("a") == ["photon-2"]
    assert result.hosts_of("b") == ["photon-3"]


def test_ties_go_to_fewer_containers_then_the_name() -> None:
    same = [host(1, "b", containers=2), host(2, "c", containers=1), host(3, "a", containers=1)]
    assert plan([Need("web")], same).hosts_of("web") == ["a"]
    assert plan([Need("web")], [host(1, "b"), host(2, "a")]).hosts_of("web") == ["a"]


def test_no_services_is_an_empty_plan_and_no_hosts_a_failure() -> None:
    assert plan([], pool3()) == Plan(())
    assert plan([Need("web", replicas=0)], pool3()) == Plan(())
    empty = plan([Need("web")], [])
    assert not empty.ok and empty.failure == "web: the project has no hosts"


# --- ON and pinning -----------------------------------------------------------------------------


def test_only_hosts_that_are_on_are_eligible() -> None:
    pool = [host(1, "photon-1", on=False, memory=64), host(2, "photon-2", memory=1)]
    assert plan([Need("web")], pool).hosts_of("web") == ["photon-2"]
    off = plan([Need("web")], [host(1, "photon-1", on=False), host(2, "photon-2", on=False)])
    assert off.failure == "web: no host is ON (photon-1, photon-2 OFF)"


def test_pin_puts_every_replica_on_the_named_host() -> None:
    result = plan([Need("db", replicas=2, pin="photon-1", spread=False)], pool3())
    assert result.ok
    assert result.hosts_of("db") == ["photon-1", "photon-1"]
    assert all("pinned to photon-1" in p.reason for p in result.placements)


def test_pin_to_an_unknown_host_fails_with_its_name() -> None:
    result = plan([Need("db", pin="photon-9")], pool3())
    assert not result.ok
    assert result.failure == "db: pinned to photon-9, which is not one of the project's hosts"
    assert result.placements == ()


def test_pin_to_a_host_that_is_off_fails_with_its_name() -> None:
    pool = [*pool3(), host(4, "photon-4", on=False)]
    assert plan([Need("db", pin="photon-4")], pool).failure == "db: pinned to photon-4, which is OFF"


def test_pin_to_a_host_without_the_tags_says_so() -> None:
    result = plan([Need("db", pin="photon-1", tags=frozenset({"ssd"}))], pool3())
    assert result.failure == "db: pinned to photon-1, which is not tagged ssd"


# --- Tags ---------------------------------------------------------------------------------------


def tagged_pool() -> list[Candidate]:
    return [
        host(1, "photon-1", tags=("web",), memory=2),
        host(2, "photon-2", tags=("db", "ssd"), memory=2),
        host(3, "photon-3", tags=("db",), memory=4),
        host(4, "photon-4", memory=16),
    ]


def test_tags_keep_a_service_on_hosts_carrying_all_of_them() -> None:
    result = plan(
        [Need("db", tags=frozenset({"db", "ssd"})), Need("cache", tags=frozenset({"db"}))], tagged_pool()
    )
    assert result.hosts_of("db") == ["photon-2"]
    assert result.hosts_of("cache") == ["photon-3"]
    assert result.placements[0].reason == "the only host tagged db, ssd that fits (2.0 GiB free)"
    assert result.placements[1].reason == "most free memory of 2 hosts tagged db (4.0 GiB free)"


def test_no_host_with_the_tags_fails_naming_them() -> None:
    result = plan([Need("db", tags=frozenset({"nvme"}))], tagged_pool())
    assert result.failure == "db: no host tagged nvme is ON (none of the project's 4 hosts has that tag)"


def test_tagged_hosts_that_are_off_are_named() -> None:
    pool = [host(1, "photon-1", tags=("ssd",), on=False), host(2, "photon-2")]
    result = plan([Need("db", tags=frozenset({"ssd"}))], pool)
    assert result.failure == "db: no host tagged ssd is ON (photon-1 OFF)"


# --- Memory and CPUs ----------------------------------------------------------------------------


def test_memory_more_than_any_host_has_fails_with_the_numbers() -> None:
    pool = [host(1, "photon-1", memory=1), host(2, "photon-2", memory=1.5)]
    result = plan([Need("db", memory=4 * GiB)], pool)
    assert result.failure == "db: needs 4.0 GiB, the most free on a qualifying host is 1.5 GiB (photon-2)"


def test_memory_taken_by_earlier_replicas_is_said() -> None:
    result = plan([Need("db", replicas=3, memory=3 * GiB, spread=False)], [host(1, "photon-1", memory=8)])
    assert result.failure == (
        "db: needs 3.0 GiB, the most free on a qualifying host is 2.0 GiB "
        "(photon-1, after this plan's other replicas)"
    )
    assert result.hosts_of("db") == ["photon-1", "photon-1"]  # how far it got, for showing


def test_memory_skips_a_host_without_room() -> None:
    pool = [host(1, "big", memory=16, cpus=1), host(2, "small", memory=1)]
    result = plan([Need("web", replicas=2, memory=2 * GiB)], pool)
    assert result.failure.startswith(
        "web: needs 2.0 GiB, the most free on a qualifying host is 1.0 GiB (small)"
    )


def test_cpus_are_checked_and_used_up() -> None:
    pool = [host(1, "photon-1", memory=16, cpus=1.0), host(2, "photon-2", memory=2, cpus=4.0)]
    result = plan([Need("worker", cpus=2.0)], pool)
    assert result.hosts_of("worker") == ["photon-2"]  # the one with most memory has too few CPUs
    failed = plan([Need("worker", replicas=2, cpus=2.5, spread=False)], pool)
    assert failed.failure == (
        "worker: needs 2.5 CPUs, the most free on a qualifying host is 1.5 "
        "(photon-2, after this plan's other replicas)"
    )


# --- Container limits ---------------------------------------------------------------------------


def test_a_hosts_container_limit_counts_existing_and_placed_containers() -> None:
    pool = [host(1, "photon-1", memory=16, containers=9, max_containers=10), host(2, "photon-2", memory=1)]
    result = plan([Need("a"), Need("b")], pool)
    assert result.hosts_of("a") == ["photon-1"]  # the tenth
    assert result.hosts_of("b") == ["photon-2"]  # photon-1 is full now


def test_every_host_at_its_limit_fails_naming_them() -> None:
    pool = [
        host(1, "photon-1", containers=10, max_containers=10),
        host(2, "photon-2", containers=3, max_containers=3),
    ]
    result = plan([Need("web")], pool)
    assert (
        result.failure
        == "web: every qualifying host is at its container limit (photon-1 10/10, photon-2 3/3)"
    )


def test_max_per_host_caps_a_service_on_each_host() -> None:
    needs = [Need("web", replicas=4, max_per_host=2, spread=False)]
    result = plan(needs, [host(1, "photon-1", memory=16), host(2, "photon-2", memory=8)])
    assert result.ok
    assert sorted(result.hosts_of("web")) == ["photon-1", "photon-1", "photon-2", "photon-2"]
    over = plan(
        [Need("web", replicas=5, max_per_host=2, spread=False)], [host(1, "photon-1"), host(2, "photon-2")]
    )
    assert (
        over.failure
        == "web: replica 5 of 5 would exceed max_per_host 2 on every qualifying host (photon-1, photon-2)"
    )


# --- Spread (anti-affinity) ---------------------------------------------------------------------


def test_three_replicas_over_three_hosts_land_on_three_hosts() -> None:
    result = plan([Need("app", replicas=3)], pool3())
    assert result.ok
    assert result.hosts_of("app") == ["photon-2", "photon-3", "photon-1"]
    assert [p.replica for p in result.placements] == [1, 2, 3]
    assert result.placements[1].reason == "most free memory of 2 hosts not yet running app (6.0 GiB free)"
    assert result.placements[2].reason == "the only host not yet running app that fits (4.0 GiB free)"


def test_three_replicas_over_two_hosts_fail_when_spread() -> None:
    pool = [host(1, "photon-1", tags=("web",)), host(2, "photon-2", tags=("web",)), host(3, "photon-3")]
    result = plan([Need("app", replicas=3, tags=frozenset({"web"}))], pool)
    assert result.failure == (
        "app: 3 replicas to spread but only 2 hosts qualify (tagged web); "
        "x-portal spread: false lets replicas share a host"
    )


def test_three_replicas_over_two_hosts_fit_without_spread() -> None:
    result = plan([Need("app", replicas=3, spread=False)], [host(1, "photon-1"), host(2, "photon-2")])
    assert result.ok
    # Memory is 0, so free memory ties and fewer containers decides: they alternate.
    assert result.hosts_of("app") == ["photon-1", "photon-2", "photon-1"]


# --- One host for everything --------------------------------------------------------------------


def test_one_host_takes_everything_and_says_so() -> None:
    result = plan([Need("web"), Need("db", replicas=2, spread=False)], pool3(), one_host="photon-1")
    assert result.ok
    assert {p.host for p in result.placements} == {"photon-1"}
    assert result.placements[0].reason == "the host chosen for the whole application (4.0 GiB free)"


def test_one_host_still_checks_the_rules() -> None:
    assert plan([Need("web")], pool3(), one_host="photon-9").failure == (
        "the chosen host photon-9 is not one of the project's hosts"
    )
    pool = [*pool3(), host(4, "photon-4", on=False)]
    assert plan([Need("web")], pool, one_host="photon-4").failure == "web: the chosen host photon-4 is OFF"
    assert plan([Need("db", pin="photon-2")], pool3(), one_host="photon-1").failure == (
        "db: pinned to photon-2, which is not the chosen host photon-1"
    )
    assert plan([Need("db", tags=frozenset({"ssd"}))], pool3(), one_host="photon-1").failure == (
        "db: the chosen host photon-1 is not tagged ssd"
    )
    assert plan([Need("db", memory=5 * GiB)], pool3(), one_host="photon-1").failure == (
        "db: needs 5.0 GiB, the most free on a qualifying host is 4.0 GiB (photon-1)"
    )
    spread = plan([Need("app", replicas=2)], pool3(), one_host="photon-1")
    assert spread.failure.startswith(
        "app: 2 replicas to spread but only 1 host qualifies (chosen host photon-1)"
    )


# --- Order --------------------------------------------------------------------------------------


def test_constrained_services_are_placed_first_but_reported_in_given_order() -> None:
    # Given first, "web" would take photon-2 (most memory), leaving the pinned and tagged
    # services short; placed last it takes what is left.
    pool = [host(1, "photon-1", tags=("db",), memory=4), host(2, "photon-2", memory=4)]
    needs = [
        Need("web", memory=3 * GiB),
        Need("db", memory=3 * GiB, tags=frozenset({"db"})),
        Need("cache", memory=512 * MiB, pin="photon-2"),
    ]
    result = plan(needs, pool)
    assert result.ok, result.failure
    assert [p.service for p in result.placements] == ["web", "db", "cache"]
    assert result.hosts_of("db") == ["photon-1"]
    assert result.hosts_of("web") == ["photon-2"]


def test_the_first_unfit_replica_stops_the_plan() -> None:
    needs = [Need("a", memory=100 * GiB), Need("b", memory=200 * GiB)]
    # "b" needs more, so it is tried first and is the one named.
    assert plan(needs, pool3()).failure.startswith("b: needs 200.0 GiB")


def test_the_same_input_gives_the_same_plan() -> None:
    needs = [
        Need(f"s{i}", replicas=1 + i % 3, memory=(i % 4) * 256 * MiB, spread=i % 2 == 0) for i in range(12)
    ]
    pool = [host(i, f"photon-{i}", memory=8, containers=i % 3) for i in range(4)]
    first = plan(needs, pool)
    assert first.ok
    assert all(plan(needs, list(pool)) == first for _ in range(5))


def test_twenty_services_on_four_hosts_is_fast() -> None:
    needs = [Need(f"s{i}", replicas=1 + i % 3, memory=64 * MiB, spread=False) for i in range(20)]
    pool = [host(i, f"photon-{i}", memory=16, cpus=8) for i in range(4)]
    started = time.perf_counter()
    result = plan(needs, pool)
    assert time.perf_counter() - started < 0.05
    assert result.ok and len(result.placements) == sum(n.replicas for n in needs)


# --- From a Compose model -----------------------------------------------------------------------


def test_needs_from_a_compose_model() -> None:
    model = {
        "services": {
            "web": {"image": "nginx", "deploy": {"replicas": 3, "resources": {"limits": {"memory": "512m"}}}},
            "db": {
                "image": "postgres",
                "deploy": {
                    "resources": {
                        "reservations": {"memory": "1.5GB", "cpus": "0.5"},
                        "limits": {"memory": "4g", "cpus": "2"},
                    }
                },
                "x-portal": {"host": "photon-1", "tags": ["db", "ssd"], "max_per_host": 1, "spread": False},
            },
            "cache": {"image": "redis", "deploy": {"resources": {"limits": {"memory": "256MiB", "cpus": 1}}}},
            "job": {"image": "busybox", "mem_limit": 1048576, "x-portal": {"tags": "batch, cheap"}},
            "bare": None,
        }
    }
    assert needs_from(model) == [
        Need("web", replicas=3, memory=512 * MiB),
        Need(
            "db",
            memory=int(1.5 * GiB),  # the reservation, not the limit
            cpus=0.5,
            pin="photon-1",
            tags=frozenset({"db", "ssd"}),
            max_per_host=1,
            spread=False,
        ),
        Need("cache", memory=256 * MiB, cpus=1.0),
        Need("job", memory=MiB, tags=frozenset({"batch", "cheap"})),
        Need("bare"),
    ]
    assert needs_from({}) == []


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ({"deploy": {"replicas": "three"}}, "web: replicas must be a whole number, not 'three'"),
        ({"deploy": {"replicas": -1}}, "web: replicas must be 0 or more, not -1"),
        ({"deploy": {"resources": {"limits": {"memory": "lots"}}}}, "web: memory 'lots': expected a number"),
        ({"deploy": {"resources": {"limits": {"cpus": "many"}}}}, "web: cpus must be a number"),
        (
            {"x-portal": {"tag": ["db"]}},
            "web: x-portal has no rule 'tag' (known: host, tags, max_per_host, spread)",
        ),
        ({"x-portal": {"spread": "no"}}, "web: x-portal spread must be true or false"),
        ({"x-portal": {"max_per_host": 0}}, "web: max_per_host must be 1 or more, not 0"),
        ({"x-portal": {"tags": 5}}, "web: x-portal tags must be a list"),
    ],
)
def test_needs_from_refuses_what_it_cannot_read(service: dict, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        needs_from({"services": {"web": service}})


# --- Memory sizes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1048576, MiB),
        ("1048576", MiB),
        ("100b", 100),
        ("64k", 64 * 1024),
        ("64KB", 64 * 1024),
        ("512m", 512 * MiB),
        ("512M", 512 * MiB),
        ("256MiB", 256 * MiB),
        ("1g", GiB),
        ("1.5GB", int(1.5 * GiB)),
        (" 2 GiB ", 2 * GiB),
        ("0.5g", GiB // 2),
        ("1t", 1024 * GiB),
    ],
)
def test_parse_memory_units(text: str | int, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "memory '': expected a number and a unit, such as 512m, 1.5GB or 256MiB"),
        ("lots", "memory 'lots': expected a number and a unit"),
        ("-1g", "memory '-1g': expected a number and a unit"),
        ("12x", "memory '12x': unknown unit 'x' (use b, k, m, g or t"),
        ("1 gigabyte", "memory '1 gigabyte': unknown unit 'gigabyte'"),
        (-5, "memory -5: cannot be negative"),
        (True, "memory True: not a size"),
        (None, "memory None: expected bytes or a string such as 512m"),
    ],
)
def test_parse_memory_refuses_bad_input_clearly(text: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_memory(text)  # type: ignore[arg-type]
