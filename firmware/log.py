# Leveled log lines. The console installs a sink that holds them back while mpremote owns the console
# and turns them into machine records for the harness; without a sink they are printed.
from micropython import const

DEBUG = const(10)
INFO = const(20)
WARN = const(30)
ERROR = const(40)
NAMES = {DEBUG: "debug", INFO: "info", WARN: "warn", ERROR: "error"}

level = INFO
_sink = None


def set_sink(fn):
    # fn(level, tag, msg); None restores plain printing.
    global _sink
    _sink = fn


def level_of(name):
    # Level number for a name ("debug", "info", ...); ValueError for anything else.
    for k, v in NAMES.items():
        if v == name:
            return k
    raise ValueError("unknown log level %r (debug, info, warn, error)" % name)


def _emit(lvl, tag, msg):
    if lvl < level:
        return
    if _sink is None:
        print("%s %s: %s" % (NAMES[lvl][0].upper(), tag, msg))
    else:
        _sink(lvl, tag, msg)


def debug(tag, msg):
    _emit(DEBUG, tag, msg)


def info(tag, msg):
    _emit(INFO, tag, msg)


def warn(tag, msg):
    _emit(WARN, tag, msg)


def error(tag, msg):
    _emit(ERROR, tag, msg)


def exc(tag, e, what=""):
    # An exception as one error line (type and message); tracebacks would flood a UART.
    _emit(ERROR, tag, "%s%s: %s" % (what + ": " if what else "", type(e).__name__, e))
