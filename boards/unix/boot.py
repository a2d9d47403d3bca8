# Unix board boot shim: mount this instance's flash directory at / and the firmware image at /rom
# (ESP32-like absolute paths), put an installed update (/app) first on the path, start the app.
import os
import sys
import vfs

_flash = os.getcwd()   # the launcher starts every instance inside its own flash directory
_image = os.getenv("EVFW_IMAGE") or ""
_rom = os.getenv("EVFW_ROM")

vfs.umount("/")
vfs.mount(vfs.VfsPosix(_flash), "/")
_path = ["/app"]
if _rom:
    # A ROMFS image in memory shared by every instance: bytecode runs in place, no per-instance copy.
    import uctypes

    _addr, _len = _rom.split(":")
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_addr, 16), int(_len))), "/rom")
    _path.append("/rom")
for _i, _dir in enumerate(d for d in ("" if _rom else _image).split(":") if d):
    _mnt = "/rom%d" % _i if _rom or _i else "/rom"
    vfs.mount(vfs.VfsPosix(_dir), _mnt)
    _path.append(_mnt)
sys.path[:] = _path + [".frozen"]
del _flash, _image, _rom, _path

import app

app.start()
