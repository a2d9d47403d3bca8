# Console command registry: firmware modules register commands with @command, the console calls
# them for human lines and machine requests alike. Also argument helpers and the plain built-ins.
import log

_cmds = {}  # name -> (fn, usage, help); a dict because functions cannot carry attributes
_REQ = object()  # "no default": the argument is required


class CommandError(Exception):
    # Bad input to a command: reported to the caller as is, and the command changed nothing.
    pass


def command(name, usage=None, help=""):
    # Decorator: register fn(args) as console command `name`. args is a list of str (human line) or
    # JSON values (machine request). fn returns None, str, number, list, dict, or a coroutine.
    def deco(fn):
        _cmds[name] = (fn, usage or name, help)
        return fn

    return deco


def get(name):
    # (fn, usage, help) of a command, or None.
    return _cmds.get(name)


def names():
    return sorted(_cmds)


def call(name, args):
    # Run a command's function; its result may be a coroutine for the caller to await.
    e = _cmds.get(name)
    if e is None:
        raise CommandError("unknown command '%s' (try help)" % name)
    return e[0](args)


# ---- argument helpers: each raises CommandError with the argument's name in it


def _arg(args, i, name, default):
    if i < len(args) and args[i] is not None:
        return args[i]
    if default is _REQ:
        raise CommandError("missing <%s>" % name)
    return default


def arg_int(args, i, name, default=_REQ):
    v = _arg(args, i, name, default)
    if v is default:
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise CommandError("<%s> must be an integer" % name)


def arg_float(args, i, name, default=_REQ):
    v = _arg(args, i, name, default)
    if v is default:
        return v
    if isinstance(v, (int, float, str)) and not isinstance(v, bool):
        try:
            return float(v)
        except ValueError:
            pass
    raise CommandError("<%s> must be a number" % name)


def arg_str(args, i, name, default=_REQ):
    v = _arg(args, i, name, default)
    if v is default or isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)  # an id tag sent as a JSON number is still the same tag
    raise CommandError("<%s> must be a string" % name)


def arg_bool(args, i, name, default=_REQ):
    v = _arg(args, i, name, default)
    if v is default or isinstance(v, bool):
        return v
    if v in ("on", "true", "1", "yes", 1):
        return True
    if v in ("off", "false", "0", "no", 0):
        return False
    raise CommandError("<%s> must be on or off" % name)


def arg_choice(args, i, name, choices, default=_REQ):
    v = _arg(args, i, name, default)
    if v is default or v in choices:
        return v
    raise CommandError("<%s> must be one of: %s" % (name, ", ".join(choices)))


# ---- human lines


def split(line):
    # Words of a human line; "double" or 'single' quotes keep spaces, \ escapes inside "...".
    words = []
    word = None  # characters of the current word; None between words
    q = None
    esc = False
    for ch in line:
        if q:
            if esc:
                word.append(ch)
                esc = False
            elif ch == "\\" and q == '"':
                esc = True
            elif ch == q:
                q = None
            else:
                word.append(ch)
        elif ch == " " or ch == "\t":
            if word is not None:
                words.append("".join(word))
                word = None
        else:
            if word is None:
                word = []
            if ch == '"' or ch == "'":
                q = ch
            else:
                word.append(ch)
    if q:
        raise CommandError("unterminated quote")
    if word is not None:
        words.append("".join(word))
    return words


def format_result(r):
    # A command's result as human text: dicts as sorted "key: value" lines, lists one item a line.
    if r is None:
        return ""
    if isinstance(r, str):
        return r
    if isinstance(r, dict):
        return "\n".join("%s: %s" % (k, value_text(r[k])) for k in sorted(r, key=str))
    if isinstance(r, (list, tuple)):
        return "\n".join(value_text(x) for x in r)
    return value_text(r)


def value_text(v):
    # One value as human text: strings as they are, anything else as compact JSON.
    if isinstance(v, str):
        return v
    from console.records import dumps

    return dumps(v)


# ---- built-ins that need nothing from the console itself


@command("help", "help [<cmd>]", "list commands, or show one command's usage")
def _help(args):
    if args:
        name = arg_str(args, 0, "cmd")
        e = _cmds.get(name)
        if e is None:
            raise CommandError("unknown command '%s' (try help)" % name)
        return "usage: %s\n  %s" % (e[1], e[2])
    ns = names()
    w = min(max(len(_cmds[n][1]) for n in ns), 28)
    lines = []
    for n in ns:
        usage = _cmds[n][1]
        lines.append("  %s  %s" % (usage + " " * (w - len(usage)), _cmds[n][2]))
    return "\n".join(lines)


@command("log", "log [debug|info|warn|error]", "show or set the log level")
def _log(args):
    if args:
        try:
            log.level = log.level_of(arg_str(args, 0, "level"))
        except ValueError as e:
            raise CommandError(str(e))
    return {"level": log.NAMES.get(log.level, log.level)}


@command("mem", "mem", "heap use after a collection")
def _mem(args):
    import gc

    gc.collect()
    return {"free": gc.mem_free(), "alloc": gc.mem_alloc()}
