"""Command line: run the CSMS and its control API as a process; prints both addresses on stdout."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

import ocpp.messages

from .config import CsmsConfig, IdTag, ServerOptions
from .control import ControlApi
from .server import Csms


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.csms", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="OCPP websocket port (0: any free)")
    parser.add_argument("--control-host", default=None, help="default: --host")
    parser.add_argument("--control-port", type=int, default=0, help="HTTP control port (0: any)")
    parser.add_argument("--no-control", action="store_true", help="no HTTP control API")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="TAG[=STATUS]",
        help="known id tag (status Accepted unless given: Blocked, Expired, Invalid...)",
    )  # fmt: skip
    parser.add_argument("--accept-all", action="store_true", help="unknown tags are Accepted")
    parser.add_argument("--password", help="HTTP Basic password for every charge point")
    parser.add_argument(
        "--cp-password", action="append", default=[], metavar="CP=PASSWORD",
        help="HTTP Basic password of one charge point",
    )  # fmt: skip
    parser.add_argument("--tls-cert", help="PEM server certificate (enables wss://)")
    parser.add_argument("--tls-key", help="PEM server key")
    parser.add_argument("--client-ca", help="PEM CA: require client certificates (profile 3)")
    parser.add_argument("--signing-ca-cert", help="PEM CA that signs SignCertificate CSRs")
    parser.add_argument("--signing-ca-key")
    parser.add_argument("--heartbeat-interval", type=int, default=300)
    parser.add_argument(
        "--boot-status", choices=("Accepted", "Pending", "Rejected"), default="Accepted"
    )
    parser.add_argument("--boot-interval", type=int, default=None)
    parser.add_argument("--records", metavar="FILE", help="append every record to this JSONL file")
    parser.add_argument("--records-cap", type=int, default=100_000)
    parser.add_argument(
        "--inline-validation",
        action="store_true",
        help="validate schemas on the event loop, not in a thread (faster under load; sets "
        "ocpp.messages.ASYNC_VALIDATION for the whole process)",
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    return args


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} must look like KEY=VALUE, not {item!r}")
        out[key] = value
    return out


def build(args: argparse.Namespace) -> Csms:
    config = CsmsConfig(heartbeat_interval=args.heartbeat_interval, accept_all=args.accept_all)
    config.update({"boot": {"status": args.boot_status, "interval": args.boot_interval}})
    for item in args.tag:
        tag, _, status = item.partition("=")
        config.tags[tag] = IdTag(status or "Accepted")
    config.password = args.password
    config.passwords = _pairs(args.cp_password, "--cp-password")
    options = ServerOptions(
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
        signing_ca_cert=args.signing_ca_cert,
        signing_ca_key=args.signing_ca_key,
        records_cap=args.records_cap,
        records_file=args.records,
    )
    return Csms(config, options)


async def _freeze_survivors(every_s: float = 10.0) -> None:
    # Recorded messages live long: moved out of the collector's reach, full collections stay short.
    # Without this their pauses grew to hundreds of ms under 1000 chargers (the OCPP p99).
    while True:
        await asyncio.sleep(every_s)
        gc.freeze()


async def _watch_loop_lag(limit_s: float = 0.1) -> None:
    # A stalled event loop is every charger's latency: say when it happens, and for how long.
    log = logging.getLogger("tools.csms.lag")
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(0.05)
        lag = loop.time() - t0 - 0.05
        if lag > limit_s:
            log.warning("event loop stalled %.0f ms", lag * 1000)


async def amain(csms: Csms, args: argparse.Namespace) -> None:
    control = None if args.no_control else ControlApi(csms)
    await csms.start()
    freezer = asyncio.create_task(_freeze_survivors())
    watcher = asyncio.create_task(_watch_loop_lag())
    try:
        if control is not None:
            await control.start(args.control_host or args.host, args.control_port)
        print(f"ocpp {csms.url}", flush=True)
        if control is not None:
            print(f"control {control.url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        freezer.cancel()
        watcher.cancel()
        if control is not None:
            await control.close()
        await csms.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.inline_validation:
        ocpp.messages.ASYNC_VALIDATION = False
    try:
        csms = build(args)
    except (ValueError, OSError) as exc:  # a bad --tag status, an unreadable CA file...
        raise SystemExit(f"error: {exc}") from None
    asyncio.run(amain(csms, args))


if __name__ == "__main__":
    main()
