# The firmware update job, imported only when one runs (API notes in proto.ocpp16.firmware):
# download to flash, wait for the transactions to end, check and unpack, swap in, reboot.
import asyncio
import log
import store.kv as kv
from proto.ocpp16 import firmware as fw
from proto.ocpp16.fwreq import send, counts, timeout_ms, ssl_for, drop

_PART = "/fw/download.part"
_BUNDLE = "/fw/download.tar"


async def update(st, job):
    try:
        await fetch_and_install(st, job["location"], job.get("retries"), job.get("interval"),
                                retrieve_at=job.get("at"))
    finally:
        if kv.load(fw.JOB) == job:   # not a newer request's (that one may have cancelled this)
            kv.remove(fw.JOB)


# -- firmware --------------------------------------------------------------------------------------

async def _until(st, at):
    # Sleep until wall time `at` (epoch s); the clock may be set meanwhile, so wake up now and then.
    clock = st.charger.clock
    while at is not None:
        left = at - clock.now()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 60))


async def _no_transactions(st):
    # A charger does not pull the rug from under a session: install once none runs.
    said = False
    while True:
        busy = [c.id for c in st.charger.connectors[1:] if c.tx is not None or c.pending is not None]
        if not busy:
            return
        if not said:
            log.info("fw", "firmware update waits for the transactions on %s to end" % busy)
            said = True
        await asyncio.sleep_ms(500)


async def _download(st, location, retries, interval):
    # Bytes downloaded to _BUNDLE, or None after 1 + retries failed attempts.
    from net import http

    kv.ensure_dir("/fw")
    kv.remove(_BUNDLE)
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(interval)
        try:
            n = await http.fetch(location, _PART, max_bytes=st.cfg.get("fw_max_bytes", 1 << 20),
                                 timeout_ms=timeout_ms(st), ssl=ssl_for(st, location, http))
            kv.rename(_PART, _BUNDLE)
            return n
        except Exception as e:   # HttpError; MemoryError or a flash error count as a failed attempt
            log.warn("fw", "download %d/%d of %s failed: %s" % (attempt + 1, retries + 1, location[:80], e))
    return None


async def fetch_and_install(st, location, retries=None, retry_interval=None, request_id=None,
                            verify=None, notify=None, retrieve_at=None, install_at=None):
    if notify is None:
        notify = lambda status: send(st, "FirmwareStatusNotification", {"status": status})  # noqa: E731

    async def say(status):
        st.firmware_status = status
        log.info("fw", "firmware: %s" % status)
        await notify(status)

    fw.fw_say = say
    retries, interval = counts(st, retries, retry_interval)
    await _until(st, retrieve_at)
    await say("Downloading")
    got = await _download(st, location, retries, interval)
    drop("net.http")   # the heap it used is needed to unpack
    if got is None:
        await say("DownloadFailed")
        return "DownloadFailed"
    log.info("fw", "downloaded %d bytes" % got)
    await say("Downloaded")
    if verify is not None:
        r = verify(_BUNDLE)
        if hasattr(r, "send"):
            r = await r
        if r is False or isinstance(r, str):
            kv.remove(_BUNDLE)
            if isinstance(r, str):
                await say(r)
            return r or "Rejected"
    await _until(st, install_at)
    await _no_transactions(st)
    await say("Installing")
    import gc

    gc.collect()   # unpacking needs a few contiguous KB of a heap the download fragmented
    try:
        from store import bundle

        info = await bundle.unpack(_BUNDLE, st.board.name)
    except Exception as e:   # BundleError, or MemoryError: the old firmware stays either way
        log.error("fw", "bundle refused: %s" % e)
        kv.remove(_BUNDLE)
        await say("InstallationFailed")
        return "InstallationFailed"
    kv.remove(_BUNDLE)
    log.info("fw", "firmware %s unpacked (%d files)" % (info["version"], info["files"]))
    await _no_transactions(st)    # one may have started while the bundle was unpacked
    for _ in range(100):          # let queued transaction messages reach the back-end (<= 10 s)
        if not st.queue.items or not st.online:
            break
        await asyncio.sleep_ms(100)
    kv.save(fw.MARK, {"version": info["version"], "request_id": request_id,
                      "from": st.cfg.get("fw_version")})
    kv.remove(fw.JOB)
    if st.ws is not None:
        try:
            await st.ws.close()
        except Exception:
            pass
    # From here on nothing awaits: no other task may import a module of the new image.
    try:
        bundle.activate()
    except OSError as e:   # flash failure: without /app the board boots its factory image
        log.error("fw", "cannot activate the new firmware: %s" % e)
        kv.remove(fw.MARK)
        await say("InstallationFailed")
        return "InstallationFailed"
    log.info("fw", "rebooting into firmware %s" % info["version"])
    st.charger.prepare_reboot("Reboot")
    st.board.reset(False)
