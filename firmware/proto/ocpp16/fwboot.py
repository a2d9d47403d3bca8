# Boot after a firmware install, or with an accepted UpdateFirmware pending on flash: reports
# Installed (or InstallationFailed) once registered, then resumes the pending update. Imported
# only then, and small: the link and the other features are busy starting at that moment.
import asyncio
import log
import store.kv as kv
from proto.ocpp16 import firmware as fw


async def boot(st, mark, job):
    if mark is not None:
        ok = st.cfg.get("fw_version") == mark.get("version")
        status = "Installed" if ok else "InstallationFailed"
        if not ok:
            log.error("fw", "running %s, not the installed %s" % (st.cfg.get("fw_version"),
                                                                  mark.get("version")))
        st.firmware_status = status
        rid = mark.get("request_id")
        if rid is None:
            action, payload = "FirmwareStatusNotification", {"status": status}
        else:
            action, payload = "SignedFirmwareStatusNotification", {"status": status, "requestId": rid}
        for _ in range(5):
            while not (st.registered and st.online):
                await asyncio.sleep(1)
            try:
                await st.call(action, payload)
                break
            except Exception as e:   # no answer, link lost, refused: a few more tries
                log.warn("fw", "%s failed: %s" % (action, e))
                await asyncio.sleep(2)
        log.info("fw", "firmware %s: %s" % (st.cfg.get("fw_version"), status))
        kv.remove(fw.MARK)
        st.firmware_status = "Idle"
    if job is not None and not fw.busy("fw"):
        log.info("fw", "resuming the firmware update from %s" % job.get("location"))
        fw.later("fw", "fwjobs", "update", st, job)()
    import sys

    sys.modules["proto.ocpp16.fwboot"] = None   # forget this module (see fwreq.drop)
    del sys.modules["proto.ocpp16.fwboot"]
    pkg = sys.modules.get("proto.ocpp16")
    if hasattr(pkg, "fwboot"):
        pkg.fwboot = None
        delattr(pkg, "fwboot")
