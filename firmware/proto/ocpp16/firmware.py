# OCPP 1.6 Firmware Management profile (UpdateFirmware, GetDiagnostics, their status notifications)
# and the security extension's GetLog / LogStatusNotification. Idle, only these routes, three status
# strings and a ring of recent log lines live in RAM: the request handling, transfer and install
# code (proto.ocpp16.fwreq, fwjobs, fwup, fwdiag, fwboot, net.http, store.bundle) is imported
# when a request comes and dropped from sys.modules again when the last job ends.
#
# Status attributes (read by TriggerMessage): st.firmware_status, st.diagnostics_status,
# st.log_status: the step in progress, "Idle" when nothing runs (also after a final status).
#
# Internal API for other features (SignedUpdateFirmware reuses the whole update path):
#   await fetch_and_install(st, location, retries=None, retry_interval=None, request_id=None,
#                           verify=None, notify=None, retrieve_at=None, install_at=None)
#   (also as st.fetch_and_install). Waits until retrieve_at (epoch s), downloads the bundle at
#   location (http://, or https:// verified with cfg "ca") to /fw/ in small chunks, 1 + retries
#   attempts retry_interval s apart (cfg transfer_retries / transfer_retry_interval_s when None);
#   then waits until install_at and until no transaction runs, checks and unpacks the bundle
#   (store.bundle, format in harness/fwbundle.py) into /app.new, swaps it in as /app and reboots
#   into it (charger.prepare_reboot + board.reset). Each step goes through `await notify(status)`
#   (default: FirmwareStatusNotification {status}) and st.firmware_status: Downloading, Downloaded |
#   DownloadFailed, Installing | InstallationFailed. verify(path), sync or async, may veto the
#   downloaded file before Installing: True/None go on, False stops (the hook reported why), a str
#   stops after notify(that str), e.g. "InvalidSignature". After the reboot, once registered, the new
#   firmware sends Installed (InstallationFailed if it does not run the bundle's version): as
#   SignedFirmwareStatusNotification {status, requestId} when request_id was given, else as
#   FirmwareStatusNotification {status}. Returns the final status when it fails; on success it does
#   not return (the board resets). Run it as a job: _run("fw", coro) (cancels the running update),
#   busy("fw") tells whether one runs; await send(st, action, payload) delivers a notification
#   (waits for a registered link, retries a lost one). The job machinery is in proto.ocpp16.fwreq.
#
# Logs: DiagnosticsLog is the ring of recent log lines: a fixed bytearray of cfg "log_ring" bytes
# (default 2048, about 25 lines; 0: none) holding "<epoch> <L> <tag>: <msg>" lines, so its cost
# never grows. SecurityLog is the ring's "security" lines plus SECURITY_LOG (and SECURITY_LOG + ".1").
import log
import store.kv as kv

JOB = "/fw/job.json"           # an accepted UpdateFirmware, resumed after a reboot
MARK = "/fw/installed.json"    # written just before rebooting into a new bundle
SECURITY_LOG = "/security.log"

ring = None      # bytearray of recent log lines, circular from ring_at (fwdiag.lines() reads it)
ring_at = 0
ring_wrapped = False
_tasks = {}      # "fw" | "diag" | "log" -> the running job's task
fw_say = None    # the running update's status reporter (fwjobs), for a job that dies
_st = None


def _req():
    from proto.ocpp16 import fwreq

    return fwreq


def install(st):
    global _st, ring
    from proto.ocpp16.keys import RO

    _st = st
    st.firmware_status = st.diagnostics_status = st.log_status = "Idle"
    st.fetch_and_install = fetch_and_install
    st.add_feature("FirmwareManagement", {"SupportedFileTransferProtocols": ("l", "HTTP,HTTPS", RO)})
    for action, fn in (("UpdateFirmware", "update_firmware"), ("GetDiagnostics", "get_diagnostics"),
                       ("GetLog", "get_log")):
        st.routes[action] = _route(fn)
    size = int(st.cfg.get("log_ring", 2048))
    if size > 0 and ring is None:
        ring = bytearray(size)
        clock = st.charger.clock
        emit = log._emit

        def tap(lvl, tag, msg):
            if lvl >= log.level:
                _keep(("%d %s %s: %s\n" % (clock.now(), log.NAMES.get(lvl, "?")[0].upper(), tag,
                                           msg[:200])).encode())
            emit(lvl, tag, msg)

        log._emit = tap   # log's functions look _emit up in their module at each call
    try:
        from console.commands import command

        command("fw", "fw", "firmware version, image it runs from, update/diagnostics/log status")(
            lambda args: _req().info(st))
    except ImportError:
        pass
    mark = kv.load(MARK)
    job = kv.load(JOB)
    if mark is None and job is None:
        return []
    from proto.ocpp16 import fwboot

    return [fwboot.boot(st, mark, job)]


def _keep(line):
    global ring_at, ring_wrapped
    buf = ring
    n = len(buf)
    k = len(line)
    if k > n:
        line = line[k - n:]
        k = n
    end = ring_at + k
    if end < n:
        buf[ring_at:end] = line
    else:
        cut = n - ring_at
        buf[ring_at:] = line[:cut]
        buf[:k - cut] = line[cut:]
        ring_wrapped = True
    ring_at = end % n


def _route(fn):
    return lambda st, p: _req().route(fn, st, p)


# -- API (see the notes above); each brings in proto.ocpp16.fwreq or fwjobs when called -----------

def _run(kind, coro, cancel=True):
    return _req().run(kind, coro, cancel)


def later(kind, module, fn, *args, cancel=True):
    # A route's `after`: runs proto.ocpp16.<module>.fn(*args) as a job. Only names and data are
    # kept until then, so nothing of the job's module stays reachable from the RPC reader's frames.
    return lambda: _req().run(kind, _req().call(module, fn, args), cancel)


def busy(kind):
    return kind in _tasks


async def send(st, action, payload, wait_s=600):
    return await _req().send(st, action, payload, wait_s)


async def fetch_and_install(st, location, retries=None, retry_interval=None, request_id=None,
                            verify=None, notify=None, retrieve_at=None, install_at=None):
    from proto.ocpp16 import fwjobs

    return await fwjobs.fetch_and_install(st, location, retries, retry_interval, request_id, verify,
                                          notify, retrieve_at, install_at)
