"""`evfleet bench` on a small fleet: it runs the standard workload and its figures are sane."""

from __future__ import annotations

from pathlib import Path

from tools.bench.fleet_bench import bench_size, format_row


async def test_bench_figures_are_sane(tmp_path: Path) -> None:
    r = await bench_size(20, tmp_path, window=8.0, warmup=4.0, say=lambda _: None)
    assert r["booted"] == 20 and 0 < r["launch_s"] <= r["boot_s"]
    assert r["launcher"].startswith("zygote-")
    # Memory: every charger and the harness counted, the CSMS apart.
    assert r["instances_pss_mib"] > 0 and r["harness_pss_mib"] > 0 and r["csms_pss_mib"] > 0
    assert abs(r["fleet_pss_mib"] - r["instances_pss_mib"] - r["harness_pss_mib"]) <= 0.2
    assert 64 < r["instances_pss_mib"] * 1024 / 20 < 4096          # a charger is ~0.3 MiB, not 4
    assert abs(r["pss_per_charger_kib"] * 20 / 1024 - r["fleet_pss_mib"]) < 0.5
    assert 0 < r["fleet_cpu_pct"] < 200 and r["csms_cpu_pct"] > 0
    for rtt in (r["console_rtt_ms"], r["ocpp_rtt_ms"]):
        assert rtt["n"] > 10 and 0 < rtt["p50"] <= rtt["p99"]
    assert r["messages_per_s"] > 0 and r["restarts"] == 0 and r["workload_errors"] == 0
    assert r["driver"] == "firmware" and "20 chargers (firmware driver): booted 20" in format_row(r)


async def test_bench_again_in_the_same_run_dir_starts_fresh(tmp_path: Path) -> None:
    # The first run's chargers stop with EVs plugged in; the next run (driven through the consoles
    # this time) must not boot on that flash and find its connectors taken.
    await bench_size(10, tmp_path, window=2.0, warmup=25.0, say=lambda _: None)
    r = await bench_size(10, tmp_path, window=4.0, warmup=4.0, say=lambda _: None, driver="harness")
    assert r["booted"] == 10 and r["driver"] == "harness"
    assert r["workload_errors"] == 0, r.get("last_workload_error")
