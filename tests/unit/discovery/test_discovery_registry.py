"""The Registry with a manual clock: leases, status, versions, eviction and self-preservation."""

from __future__ import annotations

import pytest
from discovery.prometheus_sd import http_sd_groups
from discovery.registry import EvictionReport, Registration, Registry, Status, UnknownInstance


class ManualClock:
    """A clock the test moves by hand (unix seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def reg(service: str = "orders", instance_id: str = "orders-1", **kw: object) -> Registration:
    return Registration(service=service, instance_id=instance_id, host="127.0.0.1", port=8001, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make(clock: ManualClock, **kw: object) -> Registry:
    return Registry(clock=clock, **kw)  # type: ignore[arg-type]


def test_register_renew_deregister(clock: ManualClock) -> None:
    r = make(clock, initial_version=100)
    inst, created = r.register(reg(metadata={"version": "0.1.0"}))
    assert created and inst.status == Status.UP and inst.lease_seconds == 30 and inst.heartbeat_interval == 10
    assert inst.registered_at == inst.last_renewal == clock.now
    assert r.version == 101
    clock.advance(5)
    again, created = r.register(reg(lease_seconds=12, heartbeat_interval=4))
    assert not created and again.registered_at == inst.registered_at and again.last_renewal == clock.now
    assert (again.lease_seconds, again.heartbeat_interval) == (12, 4)
    assert r.version == 102
    clock.advance(3)
    renewed = r.renew("orders", "orders-1")
    assert renewed.last_renewal == clock.now
    assert r.version == 102, "a heartbeat is not a change"
    assert r.service("orders") == (102, [renewed])
    assert r.deregister("orders", "orders-1") == renewed
    assert r.version == 103
    assert r.snapshot() == (103, {})
    with pytest.raises(UnknownInstance):
        r.renew("orders", "orders-1")
    with pytest.raises(UnknownInstance):
        r.deregister("orders", "orders-1")
    stats = r.stats()
    assert stats.registrations == {"orders": 2} and stats.renewals == {"orders": 1}
    assert stats.deregistrations == {"orders": 1} and stats.evictions == {}


def test_status_changes_bump_the_version_only_when_they_change(clock: ManualClock) -> None:
    r = make(clock)
    r.register(reg(status=Status.DOWN))
    v = r.version
    assert r.set_status("orders", "orders-1", Status.DOWN).status == Status.DOWN
    assert r.version == v
    assert r.set_status("orders", "orders-1", Status.OUT_OF_SERVICE).status == Status.OUT_OF_SERVICE
    assert r.set_status("orders", "orders-1", Status.UP).status == Status.UP
    assert r.version == v + 2
    with pytest.raises(UnknownInstance):
        r.set_status("orders", "nope", Status.UP)


def test_snapshot_is_sorted_and_drops_empty_services(clock: ManualClock) -> None:
    r = make(clock)
    for service, iid in [("payments", "p2"), ("orders", "o1"), ("payments", "p1")]:
        r.register(reg(service, iid))
    r.deregister("orders", "o1")
    _, services = r.snapshot()
    assert list(services) == ["payments"]
    assert [i.instance_id for i in services["payments"]] == ["p1", "p2"]
    assert r.service("orders")[1] == []


def test_eviction_after_missed_heartbeats(clock: ManualClock) -> None:
    # Half the fleet going silent is what self-preservation is for: off here, tested below.
    r = make(clock, default_lease_seconds=3, self_preservation_enabled=False)
    r.register(reg("orders", "quiet"))
    r.register(reg("orders", "alive"))
    for _ in range(3):
        clock.advance(1)
        r.renew("orders", "alive")
    report = r.evict()
    assert report.evicted == [] and report.expired == 0, "the lease (3 s) has not passed yet: now == expiry"
    clock.advance(0.5)
    r.renew("orders", "alive")
    v = r.version
    report = r.evict()
    assert [i.instance_id for i in report.evicted] == ["quiet"]
    assert not report.self_preservation
    assert [i.instance_id for i in r.service("orders")[1]] == ["alive"]
    assert r.version == v + 1
    assert r.stats().evictions == {"orders": 1}
    assert r.evict().evicted == [] and r.version == v + 1, "nothing evicted: no change"


def _fleet(r: Registry, clock: ManualClock, n: int, seconds: float, renewing: list[str]) -> list[EvictionReport]:
    """`seconds` of heartbeats every 10 s (the default for a 30 s lease) by the `renewing` instances,
    with an eviction pass after each round; returns the passes' reports."""
    reports = []
    for _ in range(int(seconds // 10)):
        clock.advance(10)
        for iid in renewing:
            r.renew("orders", iid)
        reports.append(r.evict())
    return reports


def test_self_preservation_stops_eviction_when_many_stop_renewing_then_recovers(clock: ManualClock) -> None:
    r = make(clock, renewal_window=60, self_preservation_threshold=0.85)
    ids = [f"orders-{i}" for i in range(10)]
    for iid in ids:
        r.register(reg("orders", iid))
    _fleet(r, clock, 10, 120, ids)
    rate = r.renewal_rate()
    assert (rate.actual, rate.expected, rate.threshold) == (60, 60, 51)
    assert not r.self_preservation_active
    # A network partition: 6 of 10 instances go silent at once, for longer than their lease.
    survivors = ids[6:]
    _fleet(r, clock, 10, 40, survivors)
    report = r.evict()
    assert report.expired == 6
    assert report.evicted == []
    assert report.self_preservation and r.self_preservation_active
    assert len(r.service("orders")[1]) == 10
    # They come back: once a window of renewals is normal again, eviction resumes.
    _fleet(r, clock, 10, 60, ids)
    assert not r.self_preservation_active
    assert r.evict().evicted == []
    assert len(r.service("orders")[1]) == 10


def test_self_preservation_reports_its_transitions(clock: ManualClock) -> None:
    r = make(clock, renewal_window=60)
    ids = [f"orders-{i}" for i in range(4)]
    for iid in ids:
        r.register(reg("orders", iid))
    _fleet(r, clock, 4, 60, ids)
    clock.advance(40)  # nobody renews
    report = r.evict()
    assert report.entered_self_preservation and not report.left_self_preservation and report.expired == 4
    again = r.evict()
    assert again.self_preservation and not again.entered_self_preservation
    reports = _fleet(r, clock, 4, 60, ids)
    assert [rep.left_self_preservation for rep in reports].count(True) == 1
    assert reports[-1].rate.actual == reports[-1].rate.expected == 24
    assert not any(rep.entered_self_preservation or rep.evicted for rep in reports)


def test_a_few_expired_instances_are_evicted_without_self_preservation(clock: ManualClock) -> None:
    r = make(clock, renewal_window=60)
    ids = [f"orders-{i}" for i in range(10)]
    for iid in ids:
        r.register(reg("orders", iid))
    _fleet(r, clock, 10, 120, ids)
    _fleet(r, clock, 10, 40, ids[1:])  # one crashes: renewals drop by a tenth of its share only
    assert not r.self_preservation_active
    assert "orders-0" not in {i.instance_id for i in r.service("orders")[1]}


def test_self_preservation_disabled_always_evicts(clock: ManualClock) -> None:
    r = make(clock, renewal_window=60, self_preservation_enabled=False)
    ids = [f"orders-{i}" for i in range(10)]
    for iid in ids:
        r.register(reg("orders", iid))
    _fleet(r, clock, 10, 120, ids)
    _fleet(r, clock, 10, 40, ids[6:])
    assert not r.self_preservation_active
    assert len(r.service("orders")[1]) == 4


def test_newcomers_owe_no_renewals_yet(clock: ManualClock) -> None:
    """A burst of registrations right after a registry restart must not look like an outage."""
    r = make(clock, renewal_window=60)
    for i in range(20):
        r.register(reg("orders", f"orders-{i}"))
    clock.advance(5)
    report = r.evict()
    assert report.rate.expected == 0 and not report.self_preservation


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"default_lease_seconds": 0}, "default_lease_seconds"),
        ({"renewal_window": 0}, "renewal_window"),
        ({"self_preservation_threshold": 1.5}, "self_preservation_threshold"),
    ],
)
def test_invalid_registry_settings(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Registry(**kw)  # type: ignore[arg-type]


def test_invalid_registration_values(clock: ManualClock) -> None:
    r = make(clock)
    with pytest.raises(ValueError, match="lease_seconds"):
        r.register(reg(lease_seconds=0))
    with pytest.raises(ValueError, match="heartbeat_interval"):
        r.register(reg(heartbeat_interval=0))


def test_http_sd_groups_bracket_ipv6_and_skip_non_up(clock: ManualClock) -> None:
    r = make(clock)
    r.register(Registration("orders", "o6", "::1", 8001, metadata={"team-name": "x"}))
    r.register(Registration("orders", "o7", "127.0.0.1", 8002, status=Status.DOWN))
    assert http_sd_groups(r.snapshot()[1]) == [
        {
            "targets": ["[::1]:8001"],
            "labels": {
                "service": "orders",
                "instance_id": "o6",
                "__metrics_path__": "/metrics",
                "__meta_discovery_metadata_team_name": "x",
            },
        }
    ]
    assert http_sd_groups({}) == []
