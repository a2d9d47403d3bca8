# GetDiagnostics and GetLog jobs, imported only when one runs: the file is written to flash by
# proto.ocpp16.fwdiag (dropped again before the transfer, to keep the peak heap low), then uploaded
# over HTTP with retries: PUT <location>/<file name>, or with cfg upload_method "POST" a
# multipart/form-data POST to location (form field "file").
import asyncio
import log
import store.kv as kv
from proto.ocpp16 import firmware as fw
from proto.ocpp16.fwreq import send, counts, timeout_ms, ssl_for, drop

_OUT = "/diag"   # the file while it is uploaded


def _path(name):
    # Where the file waits on flash: unique, as a cancelled job may still be cleaning up its own.
    import time

    return "%s/%x-%s" % (_OUT, time.ticks_ms() & 0xFFFFFF, name)


def _write(what, *args):
    # fwdiag.<what>(*args) -> True, or False when flash failed; fwdiag is forgotten afterwards.
    from proto.ocpp16 import fwdiag

    try:
        kv.ensure_dir(_OUT)
        getattr(fwdiag, what)(*args)
        return True
    except Exception as e:   # flash full or failing, out of memory
        log.error("fw", "cannot write %s: %r" % (args[1], e))
        kv.remove(args[1])
        return False
    finally:
        fwdiag = None
        drop("proto.ocpp16.fwdiag")


async def _upload(st, location, path, name, retries, interval, final=()):
    # None when the file arrived, else the last error (HttpError, or MemoryError...).
    from net import http

    method = st.cfg.get("upload_method", "PUT").upper()
    err = None
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(interval)
        try:
            ctx = ssl_for(st, location, http)
            if method == "POST":
                await http.send("POST", location, path, content_type="text/plain", form="file",
                                filename=name, timeout_ms=timeout_ms(st), ssl=ctx)
            else:
                base, sep, query = location.partition("?")
                await http.send("PUT", base.rstrip("/") + "/" + name + sep + query, path,
                                content_type="text/plain", timeout_ms=timeout_ms(st), ssl=ctx)
            log.info("fw", "uploaded %s" % name)
            return None
        except Exception as e:
            err = e
            log.warn("fw", "upload %d/%d of %s failed: %s" % (attempt + 1, retries + 1, name, e))
            if log_status(e) in final:
                break
    return err


def log_status(e):
    # The LogStatusNotification status for a failed upload.
    kind = getattr(e, "kind", None)
    if kind == "status" and e.status in (401, 403):
        return "PermissionDenied"
    if kind == "status" and e.status in (405, 501):
        return "NotSupportedOperation"
    if kind == "protocol":
        return "BadMessage"
    return "UploadFailure"


async def diagnostics(st, location, name, retries, interval, start=None, stop=None):
    async def say(status):
        st.diagnostics_status = status
        log.info("fw", "diagnostics: %s" % status)
        await send(st, "DiagnosticsStatusNotification", {"status": status})

    retries, interval = counts(st, retries, interval)
    if location.partition("://")[0].lower() not in ("http", "https"):
        log.warn("fw", "diagnostics to %s: only HTTP(S) uploads are supported" % location[:60])
        await say("UploadFailed")
        return
    path = _path(name)
    if not _write("write_diagnostics", st, path, start, stop):
        await say("UploadFailed")
        return
    err = True
    try:
        await say("Uploading")
        err = await _upload(st, location, path, name, retries, interval)
    finally:
        kv.remove(path)
    await say("Uploaded" if err is None else "UploadFailed")


async def upload_log(st, location, name, kind, request_id, retries, interval, start=None, stop=None):
    async def say(status):
        st.log_status = status
        log.info("fw", "log %d: %s" % (request_id, status))
        await send(st, "LogStatusNotification", {"status": status, "requestId": request_id})

    retries, interval = counts(st, retries, interval)
    path = _path(name)
    if not _write("write_log", st, path, kind, start, stop):
        await say("UploadFailure")
        return
    try:
        await say("Uploading")
        err = await _upload(st, location, path, name, retries, interval,
                            ("PermissionDenied", "NotSupportedOperation", "BadMessage"))
    finally:
        kv.remove(path)
    await say("Uploaded" if err is None else log_status(err))
