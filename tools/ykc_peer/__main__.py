"""`python -m tools.ykc_peer`: run the YKC platform peer and its HTTP control API until interrupted.

Prints the two addresses, one per line: the YKC TCP listener (tcp://host:port), then the control API
(http://host:port), so a launcher can read them from stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys

from .control import start_control
from .server import PeerConfig, YkcPeer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.ykc_peer", description=__doc__.splitlines()[0]
    )
    p.add_argument("--host", default="127.0.0.1", help="YKC listen address (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=8767, help="YKC TCP port (default 8767; 0 = any free port)"
    )
    p.add_argument("--control-host", default=None, help="control API address (default: --host)")
    p.add_argument(
        "--control-port", type=int, default=0, help="control API port (default 0 = any free)"
    )
    p.add_argument("--config", default=None, help="JSON file with PeerConfig fields")
    p.add_argument("--log-level", default="warning", help="debug, info, warning (default)")
    return p.parse_args(argv)


async def run(args: argparse.Namespace, config: PeerConfig) -> None:
    peer = YkcPeer(args.host, args.port, config)
    await peer.start()
    runner, control_port = await start_control(
        peer, args.control_host or args.host, args.control_port
    )
    print(f"tcp://{peer.host}:{peer.port}", flush=True)
    print(f"http://{args.control_host or args.host}:{control_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await peer.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = PeerConfig()
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            config.update(json.load(f))
    asyncio.run(run(args, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
