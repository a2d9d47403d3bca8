# Atomic JSON files on flash: write a temp file, then rename over the old one, so a power cut
# leaves either the old or the new content, never half a file.
import json
import os
import log


def load(path, default=None):
    # Content of a JSON file, or default when it is missing or unreadable (logged, never raised).
    try:
        with open(path) as f:
            # One read, then parse: json.load(f) reads the stream a byte per call, a system call
            # per byte on the unix port (a third of a charger's boot CPU, measured).
            return json.loads(f.read())
    except OSError:
        return default
    except ValueError as e:
        log.warn("kv", "%s unreadable (%s); using defaults" % (path, e))
        return default


def read_bytes(path):
    # Raw content of a file, or None when it is missing or unreadable.
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


# Whether a write to a file kept open must be flushed to survive a power cut: littlefs (ESP32)
# holds it in the file's cache until then, so that board sets this. The unix port's VfsPosix
# writes straight to the kernel, where a killed charger loses nothing (its flush is an fsync).
flush_writes = False


def settle(f):
    if flush_writes:
        f.flush()


def close(f):
    # Closes a file kept open between writes; a flash error on close changes nothing for the caller
    # (the next write opens it again).
    if f is not None:
        try:
            f.close()
        except OSError:
            pass


def save(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(obj))
    rename(tmp, path)


def rename(old, new):
    # Atomic replace. The unix port's VfsPosix builds both absolute paths in one shared buffer, so
    # rename("/a", "/b") really renames /b onto itself (a silent no-op, or ENOENT). Relative paths
    # bypass that buffer; they resolve against / (the flash root) on every board.
    if os.getcwd() == "/":
        old = old.lstrip("/")
        new = new.lstrip("/")
    os.rename(old, new)


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def ensure_dir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass  # exists already
