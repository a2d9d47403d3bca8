# Security extension, on demand: the charge point's key pair and CSR made on the device
# (SignCertificate), CertificateSigned, ExtendedTriggerMessage. Work that goes on after the answer
# holds sec.busy (sec.later) so these modules stay loaded until it ends.
import time
import log
import store.kv as kv
from proto.ocpp16 import security as S


def _now(sec):
    # Wall time, or None while the clock was never set (before 2020): no validity checks then.
    now = sec.st.charger.clock.now()
    return now if now >= 1577836800 else None


def _write(path, data):
    kv.ensure_dir("/certs")
    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, (bytes, bytearray)) else "w") as f:
        f.write(data)
    kv.rename(tmp, path)


# -- the charge point certificate -------------------------------------------------------------


async def sign_request(sec):
    # A new key pair and CSR (CN = charge point id, O = CpoName), computed in slices, then
    # SignCertificate. The key waits on flash for CertificateSigned.
    if sec.csr_busy:
        return
    sec.csr_busy = True
    try:
        from crypto import p256, x509, pem, csr as C

        st = sec.st
        t0 = time.ticks_ms()
        d, pub = await p256.arun(p256.g_keypair())
        names = []
        if st.keys["CpoName"]:
            names.append((x509.O, st.keys["CpoName"]))
        names.append((x509.CN, st.charger.id))
        der = await p256.arun(C.g_csr(d, pub, C.make_name(names)))
        _write(S.NEWKEY, C.ec_key_der(d, pub))
        d = None
        log.info("security", "CSR ready in %d ms" % time.ticks_diff(time.ticks_ms(), t0))
        csr = pem.encode(der, "CERTIFICATE REQUEST")
        der = None
        res = await st.rpc.call("SignCertificate", {"csr": csr})
        log.info("security", "SignCertificate: %s" % res.get("status"))
    except Exception as e:
        log.warn("security", "SignCertificate failed: %s" % e)
    finally:
        sec.csr_busy = False


def _check_chain(sec, text):
    # The cheap checks of a CertificateSigned chain: (certs, None) or (None, why).
    from crypto import pem, x509

    if len(text) > sec.st.keys["CertificateSignedMaxChainSize"]:
        return None, "chain longer than CertificateSignedMaxChainSize"
    try:
        certs = [x509.Cert(der) for label, der in pem.blocks(text) if label == "CERTIFICATE"]
    except ValueError as e:
        return None, "unreadable certificate: %s" % e
    if not certs:
        return None, "no certificate"
    leaf = certs[0]
    pending = kv.read_bytes(S.NEWKEY)
    if pending is None:
        return None, "no certificate signing request pending"
    try:
        from crypto.csr import parse_ec_key

        pub = parse_ec_key(pending)[1]
    except ValueError:
        return None, "pending key unreadable"
    if leaf.key_alg != x509.EC_PUBKEY or leaf.public_key != pub:
        return None, "certificate is not for the key of our request"
    if leaf.cn() != sec.st.charger.id:
        return None, "certificate CN %r is not the charge point id" % leaf.cn()
    now = _now(sec)
    for c in certs:
        if now is not None and not c.valid_at(now):
            return None, "%s is expired or not yet valid" % c.cn()
    for a, b in zip(certs, certs[1:]):
        if a.issuer != b.subject:
            return None, "chain broken after %s" % a.cn()
    return certs, None


def certificate_signed(sec, p):
    text = p["certificateChain"]
    certs, why = _check_chain(sec, text)
    if certs is None:
        sec.event("InvalidChargePointCertificate", why)
        return {"status": "Rejected"}
    return {"status": "Accepted"}, sec.later(lambda: _take_certificate(sec, certs, text))


async def _take_certificate(sec, certs, text):
    # Signatures are checked after the answer (ECDSA takes seconds on a microcontroller); only a
    # chain that verifies replaces the certificate in use.
    from crypto import p256, x509

    for a, b in zip(certs, certs[1:]):
        try:
            ok = await p256.arun(a.g_signed_by(b))
        except x509.Unsupported as e:
            log.warn("security", "chain signature not checked: %s" % e)
            continue
        if not ok:
            sec.event("InvalidChargePointCertificate", "%s: bad signature" % a.cn())
            return
    try:
        _write(S.CERT, certs[0].der)
        _write(S.CHAIN, text)
        kv.rename(S.NEWKEY, S.KEY)
    except OSError as e:
        log.warn("security", "charge point certificate not stored: %s" % e)
        return
    leaf = certs[0]
    log.info("security", "new charge point certificate %s (%s)" % (leaf.cn(), leaf.serial_hex()))
    if sec.profile() == 3:
        await sec.reconnect_soon("new charge point certificate")


# -- ExtendedTriggerMessage ---------------------------------------------------------------------


def extended_trigger(sec, p):
    what, cid = p["requestedMessage"], p.get("connectorId")
    st = sec.st
    if cid is not None and not 0 <= cid < len(st.charger.connectors):
        return {"status": "Rejected"}
    if what == "SignChargePointCertificate":
        return {"status": "Accepted"}, sec.later(lambda: sign_request(sec))
    if what == "FirmwareStatusNotification":   # the security extension's variant of it
        return {"status": "Accepted"}, lambda: _notify(st, "SignedFirmwareStatusNotification",
                                                       "firmware_status", sec.fw_request)
    if what == "LogStatusNotification":
        return {"status": "Accepted"}, lambda: _notify(st, "LogStatusNotification", "log_status")
    try:
        from proto.ocpp16 import trigger
    except ImportError:
        return {"status": "NotImplemented"}
    return {"status": "Accepted"}, lambda: trigger._send(st, what, cid)


async def _notify(st, action, attr, request_id=None):
    # The status the firmware feature keeps on the station ("Idle" without one).
    p = {"status": getattr(st, attr, None) or "Idle"}
    if request_id is not None and p["status"] != "Idle":
        p["requestId"] = request_id
    try:
        await st.rpc.call(action, p)
    except Exception as e:
        log.warn("security", "%s failed: %s" % (action, e))
