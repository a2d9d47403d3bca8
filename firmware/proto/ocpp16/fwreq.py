# Firmware Management requests (UpdateFirmware, GetDiagnostics, GetLog) and what their jobs share,
# imported only when a request comes (API notes in proto.ocpp16.firmware). The jobs themselves are
# proto.ocpp16.fwjobs (firmware update) and proto.ocpp16.fwup (diagnostics, logs).
import asyncio
import log
import store.kv as kv
from proto.ocpp16 import firmware as fw


# -- requests --------------------------------------------------------------------------------------

def update_firmware(st, p):
    from hal.clock import parse_iso

    job = {"location": p["location"], "at": int(parse_iso(p["retrieveDate"])),
           "retries": p.get("retries"), "interval": p.get("retryInterval")}
    kv.ensure_dir("/fw")
    kv.save(fw.JOB, job)
    return {}, fw.later("fw", "fwjobs", "update", st, job)


def _file_name(st, what, ext):
    from hal.clock import civil

    cid = "".join(ch if ch.isalpha() or ch.isdigit() or ch in "-_." else "_" for ch in st.charger.id)
    return "%s-%s-%04d%02d%02dT%02d%02d%02dZ.%s" % ((cid, what) + civil(st.charger.clock.now()) + (ext,))


def _t(spec, key):
    from hal.clock import parse_iso

    return parse_iso(spec[key]) if key in spec else None


def get_diagnostics(st, p):
    name = _file_name(st, "diagnostics", "txt")
    return {"fileName": name}, fw.later("diag", "fwup", "diagnostics", st, p["location"], name,
                                        p.get("retries"), p.get("retryInterval"),
                                        _t(p, "startTime"), _t(p, "stopTime"))


def get_log(st, p):
    spec = p["log"]
    where = spec["remoteLocation"]
    if where.partition("://")[0].lower() not in ("http", "https"):
        log.warn("fw", "GetLog to %s: only HTTP(S) uploads are supported" % where[:60])
        return {"status": "Rejected"}
    kind = "security" if p["logType"] == "SecurityLog" else "diagnostics"
    name = _file_name(st, kind + "-%d" % p["requestId"], "log")
    # A job that already sent its final status is left to finish; a running one is cancelled.
    running = fw.busy("log") and st.log_status in ("Idle", "Uploading")
    return ({"status": "AcceptedCanceled" if running else "Accepted", "filename": name},
            fw.later("log", "fwup", "upload_log", st, where, name, kind, p["requestId"], p.get("retries"),
                     p.get("retryInterval"), _t(spec, "oldestTimestamp"), _t(spec, "latestTimestamp"),
                     cancel=running))


def info(st):
    # The console's `fw` command.
    import sys

    where = getattr(sys.modules.get("app"), "__file__", "") or ""
    r = {"version": st.cfg.get("fw_version"), "running_from": where.rpartition("/")[0] or "?",
         "firmware_status": st.firmware_status, "diagnostics_status": st.diagnostics_status,
         "log_status": st.log_status, "log_bytes": len(fw.ring) if fw.ring_wrapped else fw.ring_at,
         "jobs": sorted(fw._tasks)}
    if not fw._tasks:
        unload()
    return r


async def send(st, action, payload, wait_s=600):
    # Deliver a notification: waits for a registered link (up to wait_s), retries a lost one.
    from proto.rpc import CallError

    for _ in range(3):
        waited = 0
        while not (st.registered and st.online):
            if waited >= wait_s:
                log.warn("fw", "%s %s not sent: offline" % (action, payload.get("status")))
                return False
            await asyncio.sleep(1)
            waited += 1
        box = []
        done = asyncio.Event()
        # In a task of its own: cancelling the job must not cut a WebSocket frame in half (a task
        # awaiting another would pass the cancellation on to it).
        asyncio.create_task(_call(st, action, payload, box, done))
        await done.wait()
        if not box:
            return True
        if isinstance(box[0], CallError):
            log.warn("fw", "%s refused: %s" % (action, box[0]))
            return False
        log.warn("fw", "%s failed: %r" % (action, box[0]))   # no answer, link lost: try again
        await asyncio.sleep(1)
    return False


async def _call(st, action, payload, box, done):
    try:
        await st.call(action, payload)
    except Exception as e:
        box.append(e)
    done.set()


# -- helpers shared with the jobs --------------------------------------------------------------------

def timeout_ms(st):
    return st.cfg.get("http_timeout_ms", 20000)


def counts(st, retries, interval):
    # The requests leave both to the charge point when absent.
    if retries is None:
        retries = st.cfg.get("transfer_retries", 2)
    if interval is None:
        interval = st.cfg.get("transfer_retry_interval_s", 30)
    return max(0, int(retries)), max(0, int(interval))


def ssl_for(st, url, http):
    if url[:6].lower() != "https:":
        return None
    from net import tls

    try:
        return tls.context(ca=st.cfg.get("ca", "/certs/ca.der"))
    except (OSError, ValueError) as e:
        raise http.HttpError("no TLS context for %s: %s" % (url[:60], e), "connect")


# -- jobs ------------------------------------------------------------------------------------------

def route(fn, st, p):
    r = globals()[fn](st, p)
    if not fw._tasks:
        unload()   # the job (started after the answer) imports what it needs
    return r


def run(kind, coro, cancel=True):
    # Start a job as a task, cancelling the same kind's running one (unless cancel is False: it
    # only sends its final status); True if one was running.
    old = fw._tasks.get(kind)
    if old is not None and cancel:
        old.cancel()

    async def runner():
        nonlocal coro
        try:
            await coro
        except asyncio.CancelledError:
            pass
        except Exception as e:   # out of memory...: the back-end still gets a final status
            log.exc("fw", e, kind)
            try:
                await _died(fw._st, kind)
            except Exception:
                pass
        finally:
            coro = None   # what the job referenced must not outlive it (see drop)
            if fw._tasks.get(kind) is me:
                del fw._tasks[kind]
                if kind == "fw":
                    fw.fw_say = None
                attr = {"fw": "firmware_status", "diag": "diagnostics_status"}.get(kind, "log_status")
                setattr(fw._st, attr, "Idle")
                if not fw._tasks:
                    unload()

    me = asyncio.create_task(runner())
    fw._tasks[kind] = me
    return old is not None


async def _died(st, kind):
    # The final status of a job that died (it may not have sent a first one).
    if kind == "fw":
        s = st.firmware_status
        if s in ("Idle", "Downloading", "DownloadScheduled", "DownloadPaused"):
            final = "DownloadFailed"
        elif s in ("Downloaded", "Installing", "SignatureVerified", "InstallScheduled"):
            final = "InstallationFailed"
        else:
            return
        if fw.fw_say is not None:
            await fw.fw_say(final)
        else:
            await send(st, "FirmwareStatusNotification", {"status": final})
    elif kind == "diag" and st.diagnostics_status in ("Idle", "Uploading"):
        await send(st, "DiagnosticsStatusNotification", {"status": "UploadFailed"})
    elif kind == "log" and st.log_status in ("Idle", "Uploading"):
        await send(st, "LogStatusNotification", {"status": "UploadFailure"})


async def call(module, fn, args):
    mod = __import__("proto.ocpp16." + module, None, None, (fn,))
    await getattr(mod, fn)(*args)


def unload():
    # Give the job code's heap back: the next request imports it again.
    for name in ("proto.ocpp16.fwup", "proto.ocpp16.fwdiag", "proto.ocpp16.fwjobs",
                 "proto.ocpp16.fwboot", "proto.ocpp16.fwreq", "store.bundle", "net.http"):
        drop(name)


def drop(name):
    # Forget a module. A deleted dict entry keeps its value in the table (py/map.c), and the GC
    # would still see the module through it: overwrite the value first.
    import sys

    if name in sys.modules:
        sys.modules[name] = None
        del sys.modules[name]
        pkg, _, mod = name.rpartition(".")
        pkg = sys.modules.get(pkg)
        if hasattr(pkg, mod):
            setattr(pkg, mod, None)
            delattr(pkg, mod)
