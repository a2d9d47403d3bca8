# charger.limits on the unix port: profile stacking, purposes, absolute / recurring / relative
# schedules, validity windows, W→A conversion, next-change times and composite schedules.
import json
import mptest
from charger import limits as L
from charger.limits import Profile, CP_MAX, TX_DEFAULT, TX, ABSOLUTE, DAILY, WEEKLY, RELATIVE

T = 1767225600   # 2026-01-01T00:00:00Z, a Thursday
H = 3600
V = 230
PH = 3


def prof(purpose=TX_DEFAULT, level=0, periods=((0, 16),), kind=ABSOLUTE, start=T, conn=1, pid=1, **kw):
    return Profile(pid, conn, purpose, level, kind, [(p[0], p[1], p[2] if len(p) > 2 else 0) for p in periods],
                   start=start, **kw)


def lim(profiles, t, conn=1, origin=None, share=1, cap=None, volts=V, phases=PH):
    return L.limit(profiles, conn, t, origin, volts, phases, share, cap)[0]


def near(a, b, eps=0.05):
    assert a is not None and abs(a - b) < eps, "%r != %r" % (a, b)


def test_absolute_periods_and_duration():
    p = prof(periods=((0, 16), (600, 10), (1200, 0)), duration=1800)
    assert L.at(p, T - 1) is None            # not started
    assert L.at(p, T) == (16, 0)
    assert L.at(p, T + 599) == (16, 0)
    assert L.at(p, T + 600) == (10, 0)
    assert L.at(p, T + 1200) == (0, 0)
    assert L.at(p, T + 1799) == (0, 0)
    assert L.at(p, T + 1800) is None         # past its duration
    assert lim([p], T + 700) == 10.0
    assert lim([p], T + 1800) is None


def test_first_period_after_start_leaves_a_gap():
    p = prof(periods=((60, 8),))
    assert L.at(p, T + 30) is None
    assert L.at(p, T + 60) == (8, 0)


def test_open_ended_and_zero_duration():
    for d in (None, 0):
        p = prof(duration=d)
        assert L.at(p, T + 10 * 365 * 86400) == (16, 0)
        assert L.edge(p, T + 5) is None


def test_edges_of_an_absolute_profile():
    p = prof(periods=((0, 16), (600, 10)), duration=1800)
    assert L.edge(p, T - 100) == T
    assert L.edge(p, T) == T + 600
    assert L.edge(p, T + 600) == T + 1800
    assert L.edge(p, T + 1800) is None
    assert L.next_change([p], 1, T + 1) == T + 600


def test_times_stay_integers():
    p = prof(periods=((0, 16), (600, 10)), duration=1800, valid_to=T + 5000)
    for t in (T - 1, T, T + 601):
        e = L.edge(p, t)
        assert isinstance(e, int), e


def test_higher_stack_level_wins_within_its_validity():
    base = prof(level=0, periods=((0, 16),), pid=1)
    top = prof(level=1, periods=((0, 8),), pid=2, valid_from=T + 100, valid_to=T + 200)
    ps = [base, top]
    assert lim(ps, T + 99) == 16
    assert lim(ps, T + 100) == 8
    assert lim(ps, T + 199) == 8
    assert lim(ps, T + 200) == 16
    assert L.next_change(ps, 1, T) == T + 100
    assert L.next_change(ps, 1, T + 100) == T + 200
    assert L.next_change(ps, 1, T + 200) is None


def test_stack_falls_through_when_the_top_schedule_is_over():
    base = prof(level=0, periods=((0, 16),), pid=1)
    top = prof(level=5, periods=((0, 6),), pid=2, start=T + 60, duration=120)
    ps = [top, base]
    assert lim(ps, T) == 16
    assert lim(ps, T + 60) == 6
    assert lim(ps, T + 180) == 16
    assert L.prevailing(ps, TX_DEFAULT, 1, T + 100)[0] is top


def test_tx_profile_overrides_default_and_cp_max_caps():
    default = prof(TX_DEFAULT, level=3, periods=((0, 10),), pid=1)
    tx = prof(TX, level=0, periods=((0, 20),), pid=2)
    assert lim([default, tx], T) == 20           # TxProfile overrides, even at a lower level
    cpmax = prof(CP_MAX, periods=((0, 16),), conn=0, pid=3)
    assert lim([default, tx, cpmax], T) == 16
    assert lim([default, cpmax], T) == 10
    assert lim([cpmax], T) == 16
    assert lim([cpmax], T, conn=0) == 16


def test_tx_profile_of_another_connector_does_not_apply():
    tx = prof(TX, periods=((0, 8),), conn=2)
    assert lim([tx], T, conn=1) is None
    assert lim([tx], T, conn=2) == 8


def test_default_on_connector_zero_applies_to_every_connector():
    all_ = prof(TX_DEFAULT, level=1, periods=((0, 12),), conn=0, pid=1)
    one = prof(TX_DEFAULT, level=1, periods=((0, 7),), conn=1, pid=2)
    ps = [all_, one]
    assert lim(ps, T, conn=1) == 7     # equal level: the connector's own wins
    assert lim(ps, T, conn=2) == 12
    assert lim(ps, T, conn=0) is None  # the charge point's total comes from CP_MAX only
    higher = prof(TX_DEFAULT, level=2, periods=((0, 9),), conn=0, pid=3)
    assert lim(ps + [higher], T, conn=1) == 9


def test_daily_recurring_across_midnight():
    night = T + 22 * H   # 22:00 every day, for 8 h: 22:00–06:00, 10 A then 16 A from 01:00
    p = prof(periods=((0, 10), (3 * H, 16)), kind=DAILY, start=night, duration=8 * H)
    assert L.at(p, night - 1) is None                        # before the first occurrence
    assert L.edge(p, T) == night
    assert L.at(p, night + H) == (10, 0)                     # 23:00
    assert L.at(p, T + 86400 + H - 1) == (10, 0)             # 00:59 next day
    assert L.at(p, T + 86400 + H) == (16, 0)                 # 01:00: 3 h in, the second period
    assert L.edge(p, night + 2 * H) == T + 86400 + H         # the change is across midnight
    assert L.at(p, T + 86400 + 5 * H) == (16, 0)             # 05:00
    assert L.at(p, T + 86400 + 6 * H) is None                # 06:00: over for today
    assert L.edge(p, T + 86400 + 7 * H) == T + 86400 + 22 * H
    assert L.at(p, T + 30 * 86400 + 23 * H) == (10, 0)       # a month later
    assert L.at(p, T + 30 * 86400 + 12 * H) is None


def test_daily_recurring_edges_wrap_to_the_next_day():
    p = prof(periods=((0, 16), (18 * H, 8)), kind=DAILY, start=T)   # 8 A from 18:00 to midnight
    assert L.at(p, T + 17 * H) == (16, 0)
    assert L.at(p, T + 23 * H) == (8, 0)
    assert L.edge(p, T + 23 * H) == T + 86400
    assert L.at(p, T + 86400) == (16, 0)
    assert L.at(p, T + 86400 + 18 * H) == (8, 0)


def test_weekly_recurring():
    p = prof(periods=((0, 6),), kind=WEEKLY, start=T + 8 * H, duration=H)  # Thursdays 08:00–09:00
    assert L.at(p, T + 8 * H + 10) == (6, 0)
    assert L.at(p, T + 86400 + 8 * H + 10) is None            # Friday
    assert L.at(p, T + 7 * 86400 + 8 * H + 10) == (6, 0)      # next Thursday
    assert L.edge(p, T + 9 * H) == T + 7 * 86400 + 8 * H


def test_relative_runs_from_the_transaction_start():
    p = prof(periods=((0, 16), (600, 8)), kind=RELATIVE, start=None, duration=1200)
    t0 = T + 5000
    assert L.at(p, t0 + 599, t0) == (16, 0)
    assert L.at(p, t0 + 600, t0) == (8, 0)
    assert L.at(p, t0 + 1200, t0) is None
    assert L.edge(p, t0 + 1, t0) == t0 + 600
    assert L.next_change([p], 1, t0 + 600, t0) == t0 + 1200
    # No transaction yet: it would start now, and has no edges to wake anyone for.
    assert L.at(p, T) == (16, 0)
    assert L.edge(p, T) is None


def test_validity_window():
    p = prof(periods=((0, 8),), valid_from=T + 100, valid_to=T + 200)
    assert L.at(p, T + 99) is None
    assert L.at(p, T + 100) == (8, 0)
    assert L.at(p, T + 200) is None
    assert L.edge(p, T) == T + 100
    assert L.edge(p, T + 150) == T + 200


def test_watts_to_amps_with_phases():
    p = prof(periods=((0, 11040),), unit_w=True)
    near(lim([p], T), 16.0)                          # 11040 W / (230 V × 3)
    p1 = prof(periods=((0, 7360, 1),), unit_w=True)
    near(lim([p1], T), 32.0)                         # one phase named
    assert L.limit([p1], 1, T, None, V, PH)[1] == 1
    near(lim([p], T, phases=1), 48.0)                # a single-phase connector
    p3 = prof(periods=((0, 3680, 3),), unit_w=True)
    near(lim([p3], T, phases=1), 16.0)               # never more phases than the connector has
    near(lim([p], T, volts=120), 30.67)
    assert L.to_watts(16.0, None, V, PH) == 11040
    assert L.to_watts(16.0, 1, V, PH) == 3680


def test_watts_and_amps_mixed_take_the_lower():
    w = prof(TX, periods=((0, 6900),), unit_w=True, pid=1)      # 10 A at 230 V × 3
    cpmax = prof(CP_MAX, periods=((0, 12),), conn=0, pid=2)
    near(lim([w, cpmax], T), 10.0)
    cpmax_w = prof(CP_MAX, periods=((0, 4140),), unit_w=True, conn=0, pid=3)  # 6 A
    near(lim([w, cpmax_w], T), 6.0)


def test_cp_max_is_shared_and_cap_applies():
    cpmax = prof(CP_MAX, periods=((0, 32),), conn=0)
    assert lim([cpmax], T, share=2) == 16
    assert lim([cpmax], T, conn=0, share=2) == 32
    assert lim([], T, cap=32) == 32.0
    assert lim([cpmax], T, cap=20) == 20.0
    assert lim([], T) is None


def test_composite_schedule_merges_purposes():
    default = prof(TX_DEFAULT, periods=((0, 16), (60, 8), (120, 16)), pid=1)
    cpmax = prof(CP_MAX, periods=((0, 10),), conn=0, start=T + 90, pid=2)
    periods, covered = L.schedule([default, cpmax], 1, T, 300, None, V, PH, cap=32)
    assert periods == [(0, 16.0, None), (60, 8.0, None), (120, 10.0, None)], periods
    assert covered == 300
    # Starting in the middle: offsets are from the schedule's start.
    periods, _ = L.schedule([default, cpmax], 1, T + 30, 60, None, V, PH, cap=32)
    assert periods == [(0, 16.0, None), (30, 8.0, None)], periods


def test_composite_schedule_without_profiles_is_the_cap():
    periods, covered = L.schedule([], 1, T, 3600, None, V, PH, cap=32)
    assert periods == [(0, 32.0, None)] and covered == 3600
    periods, covered = L.schedule([], 1, T, 0, None, V, PH, cap=32)
    assert periods == [(0, 32.0, None)] and covered == 0


def test_composite_schedule_of_a_recurring_profile_over_two_days():
    p = prof(periods=((0, 16), (18 * H, 8)), kind=DAILY, start=T)
    periods, _ = L.schedule([p], 1, T + 12 * H, 2 * 86400, None, V, PH, cap=32)
    assert periods == [(0, 16.0, None), (6 * H, 8.0, None), (12 * H, 16.0, None),
                       (30 * H, 8.0, None), (36 * H, 16.0, None)], periods


def test_composite_schedule_stops_at_max_periods():
    p = prof(periods=[(i * 60, 6 + i % 2) for i in range(20)])
    periods, covered = L.schedule([p], 1, T, 3600, None, V, PH, cap=32, max_periods=5)
    assert len(periods) == 5 and covered == 300


def test_composite_schedule_of_a_relative_profile_from_the_origin():
    p = prof(TX, periods=((0, 16), (600, 8)), kind=RELATIVE, start=None)
    periods, _ = L.schedule([p], 1, T + 300, 3600, T, V, PH, cap=32)
    assert periods == [(0, 16.0, None), (300, 8.0, None)], periods


def test_profile_round_trips_through_json():
    p = prof(TX_DEFAULT, level=2, periods=((0, 11040, 3), (60, 4000)), kind=DAILY, unit_w=True,
             duration=7200, valid_from=T, valid_to=T + 86400 * 30, pid=42)
    q = Profile.from_list(json.loads(json.dumps(p.to_list())))
    assert q.to_list() == json.loads(json.dumps(p.to_list()))
    for t in (T, T + 61, T + 86400 + 30):
        assert L.at(q, t) == tuple(L.at(p, t)), t
    near(lim([q], T), 16.0)


def test_single_precision_friendly_amounts():
    # W→A with awkward numbers stays within a tenth of an amp of the exact value.
    p = prof(periods=((0, 7400, 1),), unit_w=True)
    near(lim([p], T), 32.17, 0.01)
    assert isinstance(lim([p], T), float)


mptest.run(globals())
