# Firmware update bundles on flash (format: harness/fwbundle.py): check and unpack a downloaded
# bundle into /app.new, verifying the manifest and every file's sha256 as it streams, then swap it
# in as /app, which boot.py puts first on sys.path. Nothing touches /app until all checks pass.
import asyncio
import os
from hashlib import sha256
from binascii import hexlify
from micropython import const
import store.kv as kv

APP = "/app"
NEW = "/app.new"
OLD = "/app.old"
_BLOCK = const(512)
_MAX_MANIFEST = const(32768)
_MAX_FILES = const(400)


class BundleError(Exception):
    pass


def _hex(h):
    return hexlify(h.digest()).decode()


def _octal(b):
    b = bytes(b).rstrip(b"\0 ").lstrip(b" ")
    try:
        return int(b, 8) if b else 0
    except ValueError:
        raise BundleError("bad tar number %r" % b)


def _cstr(hdr, a, b):
    # A NUL-terminated header field (split() would make a list of every empty piece).
    f = bytes(hdr[a:b])
    i = f.find(b"\0")
    return f if i < 0 else f[:i]


def _header(f, hdr):
    # (path, size) of the next tar member, or None at the end of the archive.
    n = f.readinto(hdr)
    if n != _BLOCK:
        raise BundleError("archive truncated")
    total = sum(hdr)
    if not total:   # end-of-archive marker
        return None
    check = total - sum(hdr[148:156]) + 8 * 32
    if check != _octal(hdr[148:156]):
        raise BundleError("tar header checksum mismatch")
    if hdr[156] not in (0, 0x30):   # regular files only: no links, devices, pax headers
        raise BundleError("unsupported tar member type %r" % chr(hdr[156]))
    name = _cstr(hdr, 0, 100)
    prefix = _cstr(hdr, 345, 500) if hdr[257:262] == b"ustar" else b""
    if prefix:
        name = prefix + b"/" + name
    return name.decode(), _octal(hdr[124:136])


def _safe(path):
    # Member paths stay inside /app: relative, no "..", no empty parts.
    if not path or path[0] == "/" or "\\" in path:
        return False
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return False
    return True


def _skip_pad(f, size, hdr):
    # The zeros after a member up to the next 512-byte block: anything else is a damaged archive.
    pad = -size % _BLOCK
    if pad and (f.readinto(memoryview(hdr)[:pad]) != pad or sum(hdr[:pad])):
        raise BundleError("damaged archive padding")


def _lines(f, size):
    # The manifest's lines as str, read from its member data (size bytes); checks the end hash.
    h = sha256()
    left = size
    while left > 0:
        line = f.readline()
        if not line or len(line) > left or line[-1:] != b"\n":
            raise BundleError("manifest truncated or malformed")
        left -= len(line)
        if line.startswith(b"manifest "):
            if left != 0 or line[9:-1].decode() != _hex(h):
                raise BundleError("manifest checksum mismatch")
            return
        h.update(line)
        yield line[:-1].decode()
    raise BundleError("manifest has no checksum line")


def rmtree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        kv.remove(path)
        return
    for e in entries:
        p = path + "/" + e[0]
        if e[1] == 0x4000:
            rmtree(p)
        else:
            kv.remove(p)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _makedirs(root, rel):
    d = root
    for part in rel.split("/")[:-1]:
        d = d + "/" + part
        kv.ensure_dir(d)


async def unpack(src, board=None, dst=NEW, buf=None):
    # Checks the bundle at src and unpacks it into dst (replaced). Returns the manifest header
    # {"version", "board", "files"}; BundleError (dst removed) when anything does not match.
    rmtree(dst)
    try:
        return await _unpack(src, board, dst, buf or bytearray(_BLOCK))
    except BaseException as e:
        rmtree(dst)
        if isinstance(e, OSError):
            raise BundleError("flash error: %s" % e)
        if isinstance(e, (ValueError, UnicodeError, IndexError, StopIteration)):
            raise BundleError("malformed bundle: %s" % e)
        raise


async def _unpack(src, board, dst, buf):
    hdr = bytearray(_BLOCK)
    mv = memoryview(buf)
    try:
        f = open(src, "rb")
    except OSError:
        raise BundleError("no bundle at %s" % src)
    m = open(src, "rb")   # second handle: reads manifest lines while f walks the members
    try:
        first = _header(f, hdr)
        if first is None or first[0] != "MANIFEST" or not 0 < first[1] <= _MAX_MANIFEST:
            raise BundleError("not a firmware bundle (no MANIFEST first)")
        m.seek(f.tell())
        lines = _lines(m, first[1])
        info = {}
        for key in ("evfw-bundle", "version", "board", "files"):
            k, _, v = next(lines).partition(" ")
            if k != key:
                raise BundleError("manifest: expected %s, got %r" % (key, k))
            info[k] = v
        if info["evfw-bundle"] != "1":
            raise BundleError("bundle format %s not supported" % info["evfw-bundle"])
        if board is not None and info["board"] != board:
            raise BundleError("bundle is for board %s, this is %s" % (info["board"], board))
        count = int(info["files"])
        if not 0 < count <= _MAX_FILES:
            raise BundleError("bad file count %d" % count)
        f.seek(first[1], 1)
        _skip_pad(f, first[1], hdr)
        kv.ensure_dir(dst)
        has_main = False
        for _ in range(count):
            digest, size, path = next(lines).split(" ", 2)
            size = int(size)
            member = _header(f, hdr)
            if member is None or member != (path, size):
                raise BundleError("member %r does not match the manifest (%s)" % (member, path))
            if not _safe(path):
                raise BundleError("unsafe path %r" % path)
            _makedirs(dst, path)
            h = sha256()
            left = size
            with open(dst + "/" + path, "wb") as out:
                first_bytes = True
                while left > 0:
                    n = f.readinto(mv[:min(left, len(buf))])
                    if not n:
                        raise BundleError("archive truncated in %s" % path)
                    if first_bytes and path.endswith(".mpy") and bytes(mv[:2]) != b"M\x06":
                        raise BundleError("%s is not bytecode this runtime loads" % path)
                    first_bytes = False
                    h.update(mv[:n])
                    out.write(mv[:n])
                    left -= n
            if _hex(h) != digest:
                raise BundleError("sha256 mismatch in %s" % path)
            _skip_pad(f, size, hdr)
            has_main = has_main or path == "app.mpy"
            await asyncio.sleep_ms(0)   # flash writes are slow on a real board: let others run
        for _ in lines:   # the manifest must end here, with its checksum line
            raise BundleError("manifest lists more files than it says")
        if not has_main:
            raise BundleError("bundle has no app module (app.mpy)")
        if _header(f, hdr) is not None:
            raise BundleError("archive has members the manifest does not list")
        info["files"] = count
        return info
    finally:
        f.close()
        m.close()


def activate(new=NEW):
    # Swap the unpacked bundle in as /app (the old /app is dropped). Between the two renames a
    # power cut leaves no /app: the board then boots its factory image from /rom.
    rmtree(OLD)
    try:
        os.stat(APP)
        kv.rename(APP, OLD)
    except OSError:
        pass
    kv.rename(new, APP)
    rmtree(OLD)


def installed_version():
    # The version of the update in /app, or None when the board runs its factory image.
    try:
        import version

        return version.VERSION
    except ImportError:
        return None
