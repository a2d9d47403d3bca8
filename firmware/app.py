# Firmware entry: read this charger's configuration from its own flash, build the board, the
# model, the protocol stack and the console, then run them until a reboot.
import gc
import sys
import asyncio
import log
import store.kv as kv

try:
    from version import VERSION   # an installed update (/app, store/bundle.py) carries its version
    _UPDATED = True
except ImportError:
    VERSION = "1.0.0"
    _UPDATED = False

_DEFAULTS = {"id": "CP-0001", "connectors": 1, "protocol": "ocpp16", "type": "AC"}


def load_config():
    cfg = dict(_DEFAULTS)
    found = kv.load("/config.json")
    if found is None:
        log.warn("app", "/config.json missing or unreadable: running with defaults")
    elif not isinstance(found, dict):
        log.error("app", "/config.json is not a JSON object: running with defaults")
    else:
        cfg.update(found)
    cfg.setdefault("fw_version", VERSION)
    if _UPDATED:
        cfg["fw_version"] = VERSION   # what really runs, whatever the config emulates
    return cfg


def load_protocol(name):
    if name == "ocpp16":
        from proto import ocpp16 as p
    elif name == "ykc":
        from proto import ykc as p
    else:
        raise ValueError("unknown protocol %r (ocpp16, ykc)" % name)
    return p


def preload(protocol="ocpp16"):
    # What a boot imports, so a launcher can fork chargers from one loaded image (a unix-board
    # zygote); nothing here reads the flash or starts anything.
    import asyncio
    import board
    import charger.charger

    # asyncio loads these submodules at first use: after the fork, each charger its own copy
    # (measured: every charger loaded lock, stream and funcs during its boot).
    for name in ("Lock", "StreamReader", "wait_for"):
        getattr(asyncio, name)
    import console.console
    import console.charger_cmds
    import sim.atg

    for name in getattr(load_protocol(protocol), "PRELOAD", ()):
        __import__(name)


_oom = []   # ticks of recent MemoryErrors in protocol loops
_board = None


async def _guard(task, name):
    # A protocol loop that crashed (a bug, a MemoryError) is logged and, when the stack handed us a
    # callable, started again after a pause, like a watchdog restarting a service. A heap that
    # stays exhausted is a dead charger: after 3 MemoryErrors within a minute, reboot.
    import time

    delay = 1
    while True:
        try:
            await (task() if callable(task) else task)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as e:   # a stray CancelledError too: nobody cancels these on purpose
            log.exc("app", e, "%s crashed" % getattr(task, "__name__", name))
            gc.collect()
            if isinstance(e, MemoryError):
                now = time.ticks_ms()
                _oom[:] = [t for t in _oom if time.ticks_diff(now, t) < 60000] + [now]
                if len(_oom) >= 3 and _board is not None:
                    log.error("app", "heap exhausted 3 times in a minute: rebooting")
                    _board.reset(False)
            if not callable(task):
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)


def _start_atg(charger, board, given):
    # Sessions cycled by an emulated driver from boot on (config "atg": true or its settings).
    from sim import atg

    try:
        atg.get(charger, board.sim).start(given if isinstance(given, dict) else None)
    except ValueError as e:
        log.error("atg", "not started: %s" % e)


async def _main(board, charger, proto, tasks, cfg):
    from console import console

    global _board
    _board = board
    for i, task in enumerate(tasks):
        asyncio.create_task(_guard(task, "task%d" % i))
    asyncio.create_task(board.watch())
    if cfg.get("atg") and getattr(board, "sim", None) is not None:
        _start_atg(charger, board, cfg["atg"])
    banner = "%s %s firmware %s on %s (%s)" % (cfg.get("vendor", "EVFleet"), cfg.get("model", "Emu"),
                                              cfg["fw_version"], board.name, charger.id)
    console.repl_globals.update({"charger": charger, "board": board, "proto": proto, "cfg": cfg})
    await console.run(banner, "%s> " % charger.id)


def start():
    cfg = load_config()
    # Collect after this much allocation, not only when the heap is full, which would make all of
    # it resident. Measured at 1000 chargers (standard workload, 256k heaps, ~160 KB live): 24 KiB
    # -> 48 KiB cost 14 % less CPU for 3 % more memory; 48 -> 96 KiB: charger CPU 23.6 % -> 18.6 %
    # of a core, 292 -> 321 MiB. Marking the live heap is most of a collection's cost.
    gc.threshold(int(cfg.get("gc_threshold", 96 * 1024)))
    if cfg.get("log"):
        try:
            log.level = log.level_of(cfg["log"])
        except ValueError as e:
            log.warn("app", str(e))
    import board as board_module
    from charger.charger import Charger

    board = board_module.make_board(cfg)
    charger = Charger(board, cfg)
    proto, tasks = load_protocol(cfg.get("protocol", "ocpp16")).start(charger, board, cfg)
    import console.charger_cmds as cmds

    cmds.install(charger, board, proto)
    charger.start()
    asyncio.run(_main(board, charger, proto, tasks, cfg))


if __name__ == "__main__":
    start()
    sys.exit(0)
