"""harness.fwbundle bundles, checked and unpacked by the firmware's store.bundle on the unix port."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from harness.fwbuild import build
from harness.fwbundle import build_bundle, read_manifest
from harness.mpbin import run_mp

SCRIPT = """
import asyncio, json, os, sys, vfs
from store import bundle
flash = os.getcwd()   # before the umount, after which it would be the host's /
vfs.umount("/")
vfs.mount(vfs.VfsPosix(flash), "/")
async def main():
    out = {}
    for name in sys.argv[1:]:
        try:
            out[name] = await bundle.unpack("/" + name, "unix")
            bundle.activate()
        except bundle.BundleError as e:
            out[name] = "refused: %s" % e
    print("R " + json.dumps(out))
asyncio.run(main())
"""


def test_bundle_builds_reproducibly_and_unpacks_on_the_port(tmp_path: Path) -> None:
    flash = tmp_path / "flash"
    flash.mkdir()
    b = build_bundle("3.1.4", flash / "good.tar", overlay={"extra/hello.py": "HELLO = 1\n"})
    again = build_bundle("3.1.4", tmp_path / "again.tar", overlay={"extra/hello.py": "HELLO = 1\n"})
    assert b.sha256 == again.sha256                          # same sources, same bundle
    m = read_manifest(b.path)
    assert m["version"] == "3.1.4" and m["board"] == "unix" and int(m["files"]) == b.files
    names = [n for _, _, n in m["members"]]
    assert "version.mpy" in names and "extra/hello.mpy" in names and "app.mpy" in names
    data = b.data()
    bad = bytearray(data)
    bad[len(bad) // 3] ^= 0xFF
    (flash / "bad.tar").write_bytes(bytes(bad))
    (flash / "short.tar").write_bytes(data[: len(data) // 2])
    (script := tmp_path / "unpack.py").write_text(SCRIPT)
    res = run_mp(script, "bad.tar", "short.tar", "good.tar", path=[build("unix").root], cwd=flash)
    out = res.stdout.decode() + res.stderr.decode()
    assert res.returncode == 0, out
    r = json.loads([ln for ln in out.splitlines() if ln.startswith("R ")][0][2:])
    assert r["bad.tar"].startswith("refused") and r["short.tar"].startswith("refused")
    assert r["good.tar"] == {"evfw-bundle": "1", "version": "3.1.4", "board": "unix", "files": b.files}
    assert not (flash / "app.new").exists()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers()[1:]:
            want = tar.extractfile(member).read()  # type: ignore[union-attr]
            got = (flash / "app" / member.name).read_bytes()
            assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest(), member.name
