# Security extension, on demand: SignedUpdateFirmware. The signing certificate is checked against
# the installed ManufacturerRootCertificates, the downloaded file's signature with its key; the
# transfer and installation are proto.ocpp16.firmware's fetch_and_install.
import asyncio
import log
from proto.ocpp16 import security as S


def _now(sec):
    # Wall time, or None while the clock was never set (before 2020): no validity checks then.
    now = sec.st.charger.clock.now()
    return now if now >= 1577836800 else None


def signed_update_firmware(sec, p):
    # The signing certificate must name an installed ManufacturerRootCertificate as its issuer and
    # be valid now (else InvalidCertificate); its signature and the firmware's are checked after
    # the download, before anything is installed (proto.ocpp16.firmware does the transfer).
    st = sec.st
    if getattr(st, "fetch_and_install", None) is None:
        log.warn("security", "SignedUpdateFirmware: no firmware feature installed")
        return {"status": "Rejected"}
    from crypto import pem, x509

    f = p["firmware"]
    try:
        cert = x509.Cert(pem.decode(f["signingCertificate"]))
    except ValueError as e:
        sec.event("InvalidFirmwareSigningCertificate", "unreadable: %s" % e)
        return {"status": "InvalidCertificate"}
    from proto.ocpp16 import seccerts

    roots = [r for r in seccerts.store(sec).certs(S.MF_ROOT) if r.subject == cert.issuer]
    now = _now(sec)
    why = None
    if not roots:
        why = "not issued by an installed ManufacturerRootCertificate"
    elif now is not None and not cert.valid_at(now):
        why = "expired or not yet valid"
    elif not (cert.key_alg == x509.RSA
              or cert.key_alg == x509.EC_PUBKEY and cert.key_param == x509.P256):
        why = "key type not supported"
    if why:
        sec.event("InvalidFirmwareSigningCertificate", "%s: %s" % (cert.cn(), why))
        return {"status": "InvalidCertificate"}
    from proto.ocpp16 import firmware as fw

    rid = p["requestId"]
    status = "AcceptedCanceled" if fw.busy("fw") else "Accepted"

    async def notify(s):
        await fw.send(st, "SignedFirmwareStatusNotification", {"status": s, "requestId": rid})

    async def verify(path):
        return await _verify_firmware(sec, path, cert, roots, f["signature"], notify)

    async def job():
        from hal.clock import parse_iso

        sec.fw_request = rid
        try:
            at = int(parse_iso(f["retrieveDateTime"]))
            inst = int(parse_iso(f["installDateTime"])) if "installDateTime" in f else None
            await st.fetch_and_install(st, f["location"], p.get("retries"), p.get("retryInterval"),
                                       request_id=rid, verify=verify, notify=notify,
                                       retrieve_at=at, install_at=inst)
        finally:
            sec.fw_request = None

    sec.busy += 1   # job() runs on this module and crypto: keep them until it ends
    return {"status": status}, lambda: fw._run("fw", sec.job(job()))


async def _verify_firmware(sec, path, cert, roots, signature, notify):
    # verify hook of fetch_and_install: True to install, "InvalidSignature" to stop.
    from binascii import a2b_base64
    from hashlib import sha256
    from crypto import p256, x509

    ok = False
    for root in roots:
        try:
            ok = await p256.arun(cert.g_signed_by(root))
        except x509.Unsupported as e:
            log.warn("security", "signing certificate signature not checked: %s" % e)
            ok = True
        if ok:
            break
    if not ok:
        sec.event("InvalidFirmwareSigningCertificate", "%s: bad signature" % cert.cn())
        return "InvalidSignature"
    h = sha256()
    buf = bytearray(1024)
    n = 0
    with open(path, "rb") as fh:
        while True:
            k = fh.readinto(buf)
            if not k:
                break
            h.update(buf if k == len(buf) else buf[:k])
            n += 1
            if not n & 15:
                await asyncio.sleep_ms(0)   # a big file must not hold up the loop
    digest = h.digest()
    good = False
    try:
        sig = a2b_base64(signature)
        if cert.key_alg == x509.RSA:
            from crypto import rsa

            good = rsa.verify(cert.public_key, digest, sig)
        else:
            if len(sig) == 64:   # raw r || s (IEEE P1363) is accepted besides DER
                r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            else:
                r, s = p256.sig_parse(sig)
            good = await p256.arun(p256.g_verify(cert.public_key, digest, r, s))
    except ValueError:
        good = False
    if not good:
        sec.event("InvalidFirmwareSignature", "signed by %s: signature does not verify" % cert.cn())
        return "InvalidSignature"
    log.info("security", "firmware signature verified (%s)" % cert.cn())
    await notify("SignatureVerified")
    return True
