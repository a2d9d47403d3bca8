# Minimal test runner for firmware tests that run on the MicroPython unix port.
# Runs every test_* function (sync or async) of a module's globals, prints one line each, exits 1 on failure.
import sys
import asyncio


def flash():
    # Mount the test's working directory at / as the board boot shim does, so firmware writing
    # /state/... lands in the test's own directory; the import path stays reachable under /mnt<i>.
    import os
    import vfs

    cwd = os.getcwd()
    dirs = [p for p in sys.path if p.startswith("/")]
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(cwd), "/")
    new = []
    for i, d in enumerate(dirs):
        vfs.mount(vfs.VfsPosix(d), "/mnt%d" % i)
        new.append("/mnt%d" % i)
    sys.path[:] = new + [".frozen"]


def run(ns):
    failed = 0
    names = sorted(k for k in ns if k.startswith("test_") and callable(ns[k]))
    for name in names:
        try:
            r = ns[name]()
            if hasattr(r, "send"):  # a coroutine: async test
                asyncio.run(r)
            print("PASS", name)
        except Exception as e:
            failed += 1
            print("FAIL", name)
            sys.print_exception(e)
    print("%d passed, %d failed" % (len(names) - failed, failed))
    if failed or not names:
        sys.exit(1)
