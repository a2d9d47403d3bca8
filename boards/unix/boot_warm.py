# Warm boot shim, run once by the C zygote (--preload): import the firmware from the shared ROM
# image, then let the zygote fork chargers from this loaded heap (copy-on-write). Each charger
# returns from os.system() below in its own flash directory and starts like boot.py would.
import gc
import os
import sys
import vfs
import uctypes

_addr, _len = os.getenv("EVFW_ROM").split(":")
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_addr, 16), int(_len))), "/rom")
sys.path[:] = ["/rom", ".frozen"]   # no /app: a charger with an installed update boots cold
del _addr, _len

import app  # noqa: E402

app.preload()
gc.collect()
# The zygote serves inside this call; chargers return from it. Run any other way (libc's system()),
# it would return here in the caller's directory: stop rather than boot a charger on that "flash".
if os.system("\x01evfw-zygote-serve") != 0 or not os.getenv("EVFW_WARM_CHILD"):
    raise SystemExit("boot_warm.py runs only inside the warm zygote (harness/launcher/README.md)")

# From here on: one charger, in its own flash directory (the zygote chdir'ed there).
_flash = os.getcwd()
vfs.umount("/")
vfs.mount(vfs.VfsPosix(_flash), "/")
del _flash
import random  # noqa: E402

random.seed(int.from_bytes(os.urandom(4), "little"))   # not the zygote's sequence in every charger
app.start()
