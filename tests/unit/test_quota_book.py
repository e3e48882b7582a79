"""Tests for the quota arithmetic (actors/quota_book.py), driven directly, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cinderblock.actors.quota.book import (
    DEFAULT_LIMITS,
    USAGE_RESOURCES,
    Change,
    LimitRow,
    OverQuota,
    QuotaBook,
    QuotaError,
    Reservation,
    ReservationNotFound,
    Usage,
    UsageRow,
)

P = "project-a"
NOW = 1_000.0


class FakeStore:
    """The rows a store would hold after applying Changes in the documented order."""

    def __init__(self) -> None:
        self.limits: dict[tuple[str, str], int] = {}
        self.usages: dict[tuple[str, str], tuple[int, int]] = {}
        self.reservations: dict[str, Reservation] = {}
        self.defaults: dict[str, int] = {}

    def apply(self, change: Change) -> None:
        for rid in change.removed:
            del self.reservations[rid]
        for res in change.added:
            assert res.id not in self.reservations
            self.reservations[res.id] = res
        for project, resource, in_use, reserved in change.usages:
            self.usages[project, resource] = (in_use, reserved)
        for project in change.cleared:
            for key in [k for k in self.limits if k[0] == project]:
                del self.limits[key]
        for project, resource, limit in change.limits:
            self.limits[project, resource] = limit
        self.defaults.update(change.defaults)

    def rows(self) -> tuple[list[LimitRow], list[UsageRow], list[Reservation]]:
        limits = sorted((p, r, v) for (p, r), v in self.limits.items())
        usages = sorted((p, r, i, x) for (p, r), (i, x) in self.usages.items())
        return limits, usages, sorted(self.reservations.values(), key=lambda r: r.id)


def in_use(book: QuotaBook, resource: str, project: str = P) -> int:
    return book.usage(project)[resource].in_use


def reserved(book: QuotaBook, resource: str, project: str = P) -> int:
    return book.usage(project)[resource].reserved


def test_a_new_project_gets_the_default_limits_and_zero_usage() -> None:
    book = QuotaBook()
    assert book.limits(P) == dict(DEFAULT_LIMITS)
    assert book.usage(P) == {r: Usage(0, 0) for r in (
        "volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "groups")}


def test_the_book_accepts_other_defaults_and_rejects_bad_ones() -> None:
    assert QuotaBook({"volumes": 3}).limits(P)["volumes"] == 3
    with pytest.raises(QuotaError):
        QuotaBook({"volumes": -2})
    with pytest.raises(QuotaError):
        QuotaBook({"replicas": 3})


@pytest.mark.parametrize("resource", ["volumes", "gigabytes", "snapshots"])
def test_a_reservation_up_to_each_limit_succeeds(resource: str) -> None:
    book = QuotaBook()
    res, change = book.reserve(P, {resource: DEFAULT_LIMITS[resource]}, NOW)
    assert reserved(book, resource) == DEFAULT_LIMITS[resource]
    assert change.added == (res,)
    assert change.usages == ((P, resource, 0, DEFAULT_LIMITS[resource]),)


@pytest.mark.parametrize("resource", ["volumes", "gigabytes", "snapshots"])
def test_a_reservation_over_each_limit_raises_over_quota_with_the_numbers(resource: str) -> None:
    book = QuotaBook()
    book.commit(book.reserve(P, {resource: 2}, NOW)[0].id)
    book.reserve(P, {resource: 3}, NOW)
    limit = DEFAULT_LIMITS[resource]
    with pytest.raises(OverQuota) as caught:
        book.reserve(P, {resource: limit - 4}, NOW)
    err = caught.value
    assert (err.resource, err.limit, err.in_use, err.reserved) == (resource, limit, 2, 3)
    assert err.requested == limit - 4
    assert resource in str(err) and "Quota exceeded" in str(err)
    assert err.details()["overs"][0]["resource"] == resource


def test_a_failed_reservation_changes_nothing_even_when_other_deltas_fit() -> None:
    book = QuotaBook()
    before = book.dump()
    with pytest.raises(OverQuota) as caught:
        book.reserve(P, {"volumes": 1, "gigabytes": 1001, "snapshots": 11}, NOW)
    assert [o.resource for o in caught.value.overs] == ["gigabytes", "snapshots"]
    assert book.dump() == before
    assert book.usage(P)["volumes"] == Usage(0, 0)


def test_an_unlimited_resource_accepts_any_amount() -> None:
    book = QuotaBook()
    book.set_limits(P, {"gigabytes": -1})
    book.reserve(P, {"gigabytes": 10**9}, NOW)
    assert reserved(book, "gigabytes") == 10**9


def test_a_volume_larger_than_the_per_volume_limit_is_refused() -> None:
    book = QuotaBook()
    book.set_limits(P, {"per_volume_gigabytes": 50})
    book.reserve(P, {"volumes": 1, "gigabytes": 50}, NOW)
    with pytest.raises(OverQuota) as caught:
        book.reserve(P, {"volumes": 1, "gigabytes": 51}, NOW)
    assert (caught.value.resource, caught.value.limit) == ("per_volume_gigabytes", 50)
    assert caught.value.requested == 51
    assert "larger than maximum allowed limit 50G" in str(caught.value)
    assert reserved(book, "gigabytes") == 50


def test_an_extend_checks_the_new_size_against_the_per_volume_limit() -> None:
    book = QuotaBook()
    book.set_limits(P, {"per_volume_gigabytes": 50})
    with pytest.raises(OverQuota):
        book.reserve(P, {"gigabytes": 10}, NOW, volume_size=60)


def test_per_volume_gigabytes_is_a_limit_not_a_usage() -> None:
    book = QuotaBook()
    for bad in ({"per_volume_gigabytes": 1}, {"replicas": 1}, {"volumes": 1.5}, {"volumes": True}):
        with pytest.raises(QuotaError):
            book.reserve(P, bad, NOW)  # type: ignore[arg-type]
    assert book.dump() == ([], [], [])


def test_commit_moves_reserved_to_in_use_and_removes_the_reservation() -> None:
    book = QuotaBook()
    res, _ = book.reserve(P, {"volumes": 1, "gigabytes": 5}, NOW)
    change = book.commit(res.id)
    assert book.usage(P)["volumes"] == Usage(1, 0)
    assert book.usage(P)["gigabytes"] == Usage(5, 0)
    assert change.removed == (res.id,)
    assert sorted(change.usages) == [(P, "gigabytes", 5, 0), (P, "volumes", 1, 0)]


def test_a_retried_commit_is_a_no_op() -> None:
    book = QuotaBook()
    res, _ = book.reserve(P, {"volumes": 1}, NOW)
    book.commit(res.id)
    assert book.commit(res.id).empty
    assert in_use(book, "volumes") == 1


def test_rollback_releases_the_reservation_and_is_idempotent() -> None:
    book = QuotaBook()
    res, _ = book.reserve(P, {"volumes": 1, "gigabytes": 5}, NOW)
    change = book.rollback(res.id)
    assert book.usage(P)["gigabytes"] == Usage(0, 0)
    assert change.removed == (res.id,)
    assert book.rollback(res.id).empty


def test_commit_after_rollback_and_rollback_after_commit_are_refused() -> None:
    book = QuotaBook()
    a, _ = book.reserve(P, {"volumes": 1}, NOW)
    b, _ = book.reserve(P, {"volumes": 1}, NOW)
    book.rollback(a.id)
    book.commit(b.id)
    with pytest.raises(QuotaError, match="rolled back"):
        book.commit(a.id)
    with pytest.raises(QuotaError, match="committed"):
        book.rollback(b.id)


def test_an_unknown_reservation_is_not_found() -> None:
    book = QuotaBook()
    for op in (book.commit, book.rollback, book.reservation):
        with pytest.raises(ReservationNotFound):
            op("nope")


def test_finished_ids_are_forgotten_only_past_the_replay_window() -> None:
    book = QuotaBook()
    old, new = (book.reserve(P, {"volumes": 1}, NOW)[0].id for _ in range(2))
    book.commit(old, now=NOW)
    book.commit(new, now=NOW + 100)
    assert book.forget_finished(NOW + 50).forgotten == (old,)
    assert book.commit(new).empty
    with pytest.raises(ReservationNotFound):
        book.commit(old)


def test_a_negative_delta_reserves_nothing_and_lowers_in_use_at_commit() -> None:
    book = QuotaBook()
    book.commit(book.reserve(P, {"gigabytes": 900}, NOW)[0].id)
    shrink, change = book.reserve(P, {"gigabytes": -1000}, NOW)
    assert change.usages == ()
    assert book.usage(P)["gigabytes"] == Usage(900, 0)
    book.commit(shrink.id)
    assert book.usage(P)["gigabytes"] == Usage(0, 0)


def test_expiry_rolls_back_only_reservations_past_their_time() -> None:
    book = QuotaBook()
    old, _ = book.reserve(P, {"volumes": 1}, NOW, expire_s=10)
    young, _ = book.reserve(P, {"volumes": 2}, NOW, expire_s=100)
    assert book.expire(NOW + 10)[0] == []  # due at NOW + 10, expired only after it
    expired, change = book.expire(NOW + 50)
    assert expired == [old.id]
    assert change.removed == (old.id,)
    assert change.usages == ((P, "volumes", 0, 2),)
    assert book.rollback(old.id).empty
    with pytest.raises(QuotaError, match="expired"):
        book.commit(old.id)
    assert book.reservation(young.id) == young
    assert book.expire(NOW + 50) == ([], Change())


def test_concurrent_reservations_are_counted_together() -> None:
    book = QuotaBook()
    for _ in range(4):
        book.reserve(P, {"volumes": 2}, NOW)
    with pytest.raises(OverQuota) as caught:
        book.reserve(P, {"volumes": 3}, NOW)
    assert (caught.value.in_use, caught.value.reserved) == (0, 8)
    book.reserve(P, {"volumes": 2}, NOW)


def test_projects_do_not_share_quota() -> None:
    book = QuotaBook()
    book.reserve(P, {"volumes": 10}, NOW)
    book.reserve("project-b", {"volumes": 10}, NOW)
    assert reserved(book, "volumes", "project-b") == 10


def test_a_reserve_retried_with_the_same_id_returns_the_same_reservation() -> None:
    book = QuotaBook()
    res, _ = book.reserve(P, {"volumes": 1}, NOW, reservation_id="req-1")
    again, change = book.reserve(P, {"volumes": 1}, NOW + 5, reservation_id="req-1")
    assert again == res and change.empty
    assert reserved(book, "volumes") == 1
    with pytest.raises(QuotaError):
        book.reserve(P, {"volumes": 2}, NOW, reservation_id="req-1")
    book.commit("req-1")
    with pytest.raises(QuotaError, match="committed"):
        book.reserve(P, {"volumes": 1}, NOW, reservation_id="req-1")


def test_generated_reservation_ids_are_uuid4_hex() -> None:
    res, _ = QuotaBook().reserve(P, {"volumes": 1}, NOW)
    assert len(res.id) == 32 and int(res.id, 16) >= 0
    assert res.expires_at == NOW + 86400.0


def test_set_limits_validates_everything_before_changing_anything() -> None:
    book = QuotaBook()
    for bad in ({"volumes": 5, "replicas": 1}, {"volumes": 5, "gigabytes": -2}, {"volumes": "5"}):
        with pytest.raises(QuotaError):
            book.set_limits(P, bad)  # type: ignore[arg-type]
    assert book.limits(P) == dict(DEFAULT_LIMITS)
    change = book.set_limits(P, {"volumes": 5, "gigabytes": -1})
    assert sorted(change.limits) == [(P, "gigabytes", -1), (P, "volumes", 5)]
    assert book.set_limits(P, {"volumes": 5}).empty


def test_a_limit_below_current_usage_is_refused_like_cinder() -> None:
    book = QuotaBook()
    book.commit(book.reserve(P, {"volumes": 3, "gigabytes": 100}, NOW)[0].id)
    book.reserve(P, {"volumes": 2}, NOW)
    with pytest.raises(QuotaError, match="Current usage is 5"):
        book.set_limits(P, {"volumes": 4})
    book.set_limits(P, {"volumes": 5, "per_volume_gigabytes": 1})
    assert book.limits(P)["volumes"] == 5


def test_a_deleted_quota_is_the_defaults_again_whatever_is_in_use() -> None:
    book = QuotaBook({"volumes": 10})
    book.set_limits(P, {"volumes": 50, "gigabytes": 500})
    book.commit(book.reserve(P, {"volumes": 20}, NOW)[0].id)
    change = book.clear_limits(P)
    assert change == Change(cleared=(P,)) and not change.empty
    assert book.limits(P) == book.default_limits() and in_use(book, "volumes") == 20
    assert book.clear_limits(P).empty  # nothing left to delete
    with pytest.raises(OverQuota):  # 20 in use against a limit of 10: as Cinder, no check
        book.reserve(P, {"volumes": 1}, NOW)


def test_the_default_class_s_limits_are_every_project_s_without_its_own_and_are_kept() -> None:
    """Cinder's quota-class update of ``default``: projects without a limit of their own
    have the new one at once, usage not checked against it; its rows are what a
    restart loads back over the configured defaults."""
    book, store = QuotaBook({"volumes": 10}), FakeStore()
    store.apply(book.set_limits("own", {"volumes": 50}))
    book.commit(book.reserve(P, {"volumes": 6}, NOW)[0].id)
    change = book.set_default_limits({"volumes": 5, "snapshots": 3})
    assert change == Change(defaults=(("volumes", 5), ("snapshots", 3)))
    store.apply(change)
    assert (book.limits(P)["volumes"], book.limits("own")["volumes"]) == (5, 50)
    assert book.default_limits() == {**DEFAULT_LIMITS, "volumes": 5, "snapshots": 3}
    with pytest.raises(OverQuota):  # 6 in use against 5: set all the same, as Cinder's
        book.reserve(P, {"volumes": 1}, NOW)
    assert book.set_default_limits({"volumes": 5}).empty
    with pytest.raises(QuotaError, match="Bad key"):
        book.set_default_limits({"replicas": 1, "volumes": 1})
    with pytest.raises(QuotaError, match="from -1"):
        book.set_default_limits({"volumes": -2})
    assert book.default_limits()["volumes"] == 5  # a refused update changed nothing
    store.apply(book.clear_limits("own"))
    assert book.limits("own")["volumes"] == 5

    assert sorted(store.defaults.items()) == book.default_rows()
    reloaded = QuotaBook({"volumes": 10, "gigabytes": 99})
    reloaded.load(*book.dump(), book.finished_rows(), book.default_rows())
    assert reloaded.default_limits() == {**book.default_limits(), "gigabytes": 99}
    merged = Change.merge([book.set_default_limits({"volumes": 7}),
                           book.set_default_limits({"volumes": 8, "gigabytes": 1})])
    assert merged.defaults == (("volumes", 8), ("gigabytes", 1))


def test_release_gives_usage_back_but_never_below_zero() -> None:
    book = QuotaBook()
    book.commit(book.reserve(P, {"volumes": 2, "gigabytes": 10}, NOW)[0].id)
    change = book.release(P, {"volumes": 1, "gigabytes": 25})
    assert book.usage(P)["volumes"] == Usage(1, 0)
    assert book.usage(P)["gigabytes"] == Usage(0, 0)
    assert sorted(change.usages) == [(P, "gigabytes", 0, 0), (P, "volumes", 1, 0)]
    assert book.release(P, {"gigabytes": 5}).empty
    with pytest.raises(QuotaError):
        book.release(P, {"volumes": -1})


def test_sync_sets_in_use_to_reality_and_reports_only_changed_rows() -> None:
    book = QuotaBook()
    book.commit(book.reserve(P, {"volumes": 2}, NOW)[0].id)
    book.reserve(P, {"volumes": 1}, NOW)
    change = book.sync(P, {"volumes": 7, "gigabytes": 0, "snapshots": 1})
    assert sorted(change.usages) == [(P, "snapshots", 1, 0), (P, "volumes", 7, 1)]
    assert book.usage(P)["volumes"] == Usage(7, 1)
    assert book.sync(P, {"volumes": 7}).empty
    with pytest.raises(QuotaError):
        book.sync(P, {"per_volume_gigabytes": 1})


def test_a_book_loaded_from_the_change_records_equals_the_original() -> None:
    book, store = QuotaBook(), FakeStore()
    changes = [
        book.set_limits(P, {"volumes": 20, "per_volume_gigabytes": 100}),
        book.reserve(P, {"volumes": 1, "gigabytes": 10}, NOW)[1],
        book.reserve(P, {"volumes": 1, "gigabytes": 20}, NOW, expire_s=1)[1],
        book.reserve("project-b", {"snapshots": 1}, NOW, reservation_id="snap-1")[1],
        book.commit("snap-1"),
        book.expire(NOW + 2)[1],
        book.release("project-b", {"snapshots": 1}),
        book.sync("project-c", {"volumes": 3}),
        book.set_limits("project-c", {"volumes": 9, "snapshots": 2}),
        book.clear_limits("project-c"),
        book.set_limits("project-c", {"snapshots": 4}),
        book.set_limits("project-d", {"volumes": 1}),
        book.clear_limits("project-d"),
    ]
    for change in changes:
        store.apply(change)
    assert store.rows() == book.dump()
    merged = FakeStore()
    merged.apply(Change.merge(changes))
    assert merged.rows() == book.dump()
    reloaded = QuotaBook()
    reloaded.load(*store.rows())
    assert reloaded.dump() == book.dump()
    for project in (P, "project-b", "project-c"):
        assert reloaded.limits(project) == book.limits(project)
        assert reloaded.usage(project) == book.usage(project)


def test_load_rejects_rows_it_does_not_understand() -> None:
    with pytest.raises(QuotaError):
        QuotaBook().load([(P, "replicas", 1)], [], [])
    with pytest.raises(QuotaError):
        QuotaBook().load([], [(P, "volumes", -1, 0)], [])


PROJECTS = ("p1", "p2")
TYPED = ("volumes_t1", "gigabytes_t1", "snapshots_t1")  # a volume type's own
DELTAS = st.dictionaries(st.sampled_from([*sorted(USAGE_RESOURCES), *TYPED]),
                         st.integers(-5, 12), max_size=4)


class QuotaMachine(RuleBasedStateMachine):
    """Random operation sequences against a model of in_use; sync is excluded
    because it may legitimately report more than the limit."""

    def __init__(self) -> None:
        super().__init__()
        self.book = QuotaBook({"volumes": 8, "gigabytes": 30, "snapshots": 5})
        self.store = FakeStore()
        self.changes: list[Change] = []
        self.in_use: dict[tuple[str, str], int] = {}
        self.ids: list[str] = []
        self.now = NOW

    def record(self, change: Change) -> None:
        self.store.apply(change)
        self.changes.append(change)

    @rule(project=st.sampled_from(PROJECTS), deltas=DELTAS, expire_s=st.sampled_from([5.0, 50.0]))
    def reserve(self, project: str, deltas: dict[str, int], expire_s: float) -> None:
        try:
            res, change = self.book.reserve(project, deltas, self.now, expire_s)
        except OverQuota:
            return
        self.ids.append(res.id)
        self.record(change)

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), commit=st.booleans())
    def finish(self, data: st.DataObject, commit: bool) -> None:
        rid = data.draw(st.sampled_from(self.ids))
        pending = dict(self.store.reservations)
        try:
            self.record(self.book.commit(rid) if commit else self.book.rollback(rid))
        except QuotaError:
            assert rid not in pending
            return
        if commit and rid in pending:
            for resource, delta in pending[rid].deltas.items():
                key = (pending[rid].project, resource)
                self.in_use[key] = max(0, self.in_use.get(key, 0) + delta)

    @rule(step=st.floats(0, 30))
    def expire(self, step: float) -> None:
        self.now += step
        expired, change = self.book.expire(self.now)
        assert all(self.store.reservations[rid].expires_at < self.now for rid in expired)
        self.record(change)
        assert all(r.expires_at >= self.now for r in self.store.reservations.values())

    @rule(project=st.sampled_from(PROJECTS), limit=st.integers(-1, 20),
          resource=st.sampled_from(["gigabytes", "gigabytes_t1", "volumes_t1"]))
    def set_limit(self, project: str, limit: int, resource: str) -> None:
        try:
            self.record(self.book.set_limits(project, {resource: limit}))
        except QuotaError:
            usage = self.book.usage(project).get(resource, Usage())
            assert limit < usage.in_use + usage.reserved

    @rule(project=st.sampled_from(PROJECTS))
    def clear_limits(self, project: str) -> None:
        self.record(self.book.clear_limits(project))
        assert self.book.limits(project) == self.book.default_limits()

    @rule(
        project=st.sampled_from(PROJECTS),
        amounts=DELTAS.map(lambda d: {k: abs(v) for k, v in d.items()}),
    )
    def release(self, project: str, amounts: dict[str, int]) -> None:
        self.record(self.book.release(project, amounts))
        for resource, amount in amounts.items():
            key = (project, resource)
            self.in_use[key] = max(0, self.in_use.get(key, 0) - amount)

    @invariant()
    def usage_stays_within_limits_and_matches_the_reservations(self) -> None:
        for project in PROJECTS:
            limits, usages = self.book.limits(project), self.book.usage(project)
            for resource, usage in usages.items():
                pending = sum(
                    max(0, r.deltas.get(resource, 0))
                    for r in self.store.reservations.values()
                    if r.project == project
                )
                assert usage.reserved == pending
                assert usage.in_use == self.in_use.get((project, resource), 0)
                limit = limits.get(resource, -1)  # a type's own: unlimited unless set
                assert limit == -1 or usage.in_use + usage.reserved <= limit

    @invariant()
    def the_store_rebuilt_from_changes_equals_the_book(self) -> None:
        assert self.store.rows() == self.book.dump()

    def teardown(self) -> None:
        merged = FakeStore()
        merged.apply(Change.merge(self.changes))
        assert merged.rows() == self.book.dump()
        reloaded = QuotaBook(self.book.limits("nobody"))
        reloaded.load(*self.store.rows())
        assert reloaded.dump() == self.book.dump()


QuotaMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_random_operation_sequences_keep_usage_within_limits_and_equal_to_reservations = (
    QuotaMachine.TestCase
)


# ---- what cannot be stored is refused before anything changes ---------------------
@pytest.mark.parametrize("limit", [2**31, 2**63, 2**64 - 1, -2])
def test_a_limit_past_cinders_cap_is_refused_and_the_old_limit_stays(limit: int) -> None:
    book = QuotaBook()
    before = book.limits(P)
    with pytest.raises(QuotaError, match="must be an integer from -1 to 2147483647"):
        book.set_limits(P, {"volumes": 5, "gigabytes": limit})
    assert book.limits(P) == before


def test_the_largest_limit_cinder_allows_is_kept() -> None:
    book = QuotaBook()
    book.set_limits(P, {"gigabytes": 2**31 - 1})
    assert book.limits(P)["gigabytes"] == 2**31 - 1


@pytest.mark.parametrize("delta", [2**53, -(2**53), 2**64 - 1])
def test_a_delta_no_usage_could_store_is_refused_and_nothing_is_reserved(delta: int) -> None:
    book = QuotaBook({"gigabytes": -1})
    with pytest.raises(QuotaError, match="Delta for gigabytes must be an integer from"):
        book.reserve(P, {"volumes": 1, "gigabytes": delta}, NOW)
    assert book.usage(P)["volumes"] == Usage(0, 0)


# ---- a volume type's own quota (volumes_<type id>, ...) -------------------------------


def test_a_volume_type_s_own_quota_is_unlimited_until_set_and_then_refuses() -> None:
    book = QuotaBook()
    deltas = {"volumes": 1, "gigabytes": 5, "volumes_t1": 1, "gigabytes_t1": 5}
    res, _ = book.reserve(P, deltas, NOW)
    book.commit(res.id)
    assert "volumes_t1" not in book.limits(P)  # -1 unless an admin set it
    assert (in_use(book, "volumes_t1"), in_use(book, "gigabytes_t1")) == (1, 5)
    book.set_limits(P, {"volumes_t1": 1})
    with pytest.raises(OverQuota) as caught:
        book.reserve(P, deltas, NOW)
    assert (caught.value.resource, caught.value.limit, caught.value.in_use) == ("volumes_t1", 1, 1)
    assert "Quota exceeded for resources: volumes_t1" in str(caught.value)
    book.reserve(P, {"volumes": 1, "gigabytes": 5, "volumes_t2": 1}, NOW)  # another type's
    with pytest.raises(QuotaError, match="must be equal or greater than existing"):
        book.set_limits(P, {"gigabytes_t1": 4})


def test_a_volume_type_s_default_limit_is_the_default_class_s_and_no_per_volume_limit() -> None:
    book = QuotaBook({"per_volume_gigabytes": 10})
    book.set_default_limits({"gigabytes_t1": 8})
    assert book.limits("anyone")["gigabytes_t1"] == 8
    with pytest.raises(OverQuota, match="gigabytes_t1"):
        book.reserve(P, {"gigabytes": 9, "gigabytes_t1": 9}, NOW)
    book.set_limits(P, {"gigabytes_t1": -1})
    book.reserve(P, {"gigabytes": 9, "gigabytes_t1": 9}, NOW)  # the project's own wins
    with pytest.raises(OverQuota, match="per_volume_gigabytes"):  # the volume's, as always
        book.reserve(P, {"gigabytes": 11, "gigabytes_t1": 11}, NOW)


@pytest.mark.parametrize("resource", ["volumes_", "bogus_t1", "per_volume_gigabytes_t1",
                                      "volumes_" + "x" * 256])
def test_a_name_that_is_no_volume_type_s_resource_is_refused(resource: str) -> None:
    book = QuotaBook()
    with pytest.raises(QuotaError):
        book.reserve(P, {resource: 1}, NOW)
    with pytest.raises(QuotaError, match="Bad key"):
        book.set_limits(P, {resource: 1})


def test_sync_sets_each_type_s_usage_and_a_type_it_does_not_name_to_none() -> None:
    book = QuotaBook()
    res, _ = book.reserve(P, {"volumes": 2, "volumes_t1": 1, "volumes_t2": 1}, NOW)
    book.commit(res.id)
    counted = {"volumes": 2, "gigabytes": 0, "snapshots": 0, "volumes_t1": 2}
    assert book.synced(P, counted) == {**counted, "volumes_t2": 0, "backups": 0,
                                       "backup_gigabytes": 0, "groups": 0}  # as they were
    book.sync(P, counted)
    assert (in_use(book, "volumes_t1"), in_use(book, "volumes_t2")) == (2, 0)
    reloaded = QuotaBook()
    reloaded.load(*book.dump())
    assert reloaded.usage(P) == book.usage(P)
