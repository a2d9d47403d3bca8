# Security extension, on demand (security.py imports it for a request and drops it afterwards):
# security profile changes, the TLS context of profiles 2 and 3, root certificates on flash
# (InstallCertificate, GetInstalledCertificateIds, DeleteCertificate).
import asyncio
import log
from proto.ocpp16 import security as S


def _now(sec):
    # Wall time, or None while the clock was never set (before 2020): no validity checks then.
    now = sec.st.charger.clock.now()
    return now if now >= 1577836800 else None


def read(path):
    # Bytes of a DER or PEM file (PEM converted); None if missing or unreadable.
    from crypto.certstore import read_der

    return read_der(path, None)


def store(sec):
    # The root certificate store, with the instance's factory certificates adopted on first use.
    if sec.store is None:
        from crypto.certstore import Store

        sec.store = s = Store()
        cfg = sec.st.cfg
        s.seed(S.CS_ROOT, cfg.get("ca", "/certs/ca.der"))
        if cfg.get("mfr_ca"):
            s.seed(S.MF_ROOT, cfg["mfr_ca"])
    return sec.store


# -- security profiles ----------------------------------------------------------------------


def change_profile(sec, text, change):
    # ChangeConfiguration SecurityProfile: only upwards (TC_083/084), and only when it can work.
    try:
        new = int(text.strip())
    except ValueError:
        return "Rejected"
    cur = sec.profile()
    if not 0 <= new <= 3 or new < cur:
        log.warn("security", "SecurityProfile %s refused (now %d)" % (text, cur))
        return "Rejected"
    if new == cur:
        return "Accepted"
    why = missing_for(sec, new)
    if why:
        log.warn("security", "SecurityProfile %d refused: %s" % (new, why))
        return "Rejected"
    status = change("SecurityProfile", str(new))
    if status == "Accepted":
        sec.state["prev"] = cur    # on probation until a connection with the new profile works
        sec.save_state()
        sec.fails = 0
        sec.event("ReconfigurationOfSecurityParameters", "SecurityProfile %d -> %d" % (cur, new))
        asyncio.create_task(sec.reconnect_soon("security profile %d" % new))
    return status


def missing_for(sec, prof):
    st = sec.st
    if prof in (1, 2) and not st.keys["AuthorizationKey"]:
        return "no AuthorizationKey"
    if prof >= 2 and not store(sec).count(S.CS_ROOT):
        return "no CentralSystemRootCertificate installed"
    if prof == 3 and client_files(sec) is None:
        return "no charge point certificate"
    return None


def client_files(sec):
    # (cert DER, key DER) the charge point authenticates with: its own (CertificateSigned) first,
    # else the factory one from the config; None without any.
    cfg = sec.st.cfg
    for c, k in ((S.CERT, S.KEY), (cfg.get("client_cert"), cfg.get("client_key"))):
        if c and k:
            cert, key = read(c), read(k)
            if cert and key:
                return cert, key
    return None


def tls_context(sec, prof):
    # Profiles 2 and 3: trust the installed CentralSystemRootCertificates only; 3 adds our own
    # certificate.
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    roots = store(sec).ders(S.CS_ROOT)
    if not roots:
        raise ValueError("no CentralSystemRootCertificate installed")
    for der in roots:
        ctx.load_verify_locations(cadata=der)   # each call adds one trust anchor
    if prof == 3:
        files = client_files(sec)
        if files is None:
            raise ValueError("no charge point certificate for security profile 3")
        ctx.load_cert_chain(files[0], files[1])
    return ctx


# -- root certificates ----------------------------------------------------------------------


def install_certificate(sec, p):
    from crypto import pem, x509

    use = p["certificateType"]
    try:
        der = pem.decode(p["certificate"])
        cert = x509.Cert(der)
    except ValueError as e:
        log.warn("security", "InstallCertificate: not a certificate (%s)" % e)
        return {"status": "Rejected"}
    now = _now(sec)
    if now is not None and not cert.valid_at(now):
        log.warn("security", "InstallCertificate: %s is not valid now" % cert.cn())
        return {"status": "Rejected"}
    if cert.ca is False:
        log.warn("security", "InstallCertificate: %s is not a CA certificate" % cert.cn())
        return {"status": "Rejected"}
    s = store(sec)
    if not s.has(der, use) and s.count() >= sec.st.keys["CertificateStoreMaxLength"]:
        log.warn("security", "InstallCertificate: certificate store full")
        return {"status": "Rejected"}
    try:
        s.add(use, der, cert)
    except OSError as e:
        log.warn("security", "InstallCertificate: %s" % e)
        return {"status": "Failed"}
    log.info("security", "installed %s %s" % (use, cert.cn()))
    return {"status": "Accepted"}


def installed_ids(sec, p):
    hd = store(sec).hash_data(p["certificateType"])
    if not hd:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashData": hd}


def delete_certificate(sec, p):
    s = store(sec)
    e = s.find(p["certificateHashData"])
    if e is None:
        return {"status": "NotFound"}
    if e["use"] == S.CS_ROOT and sec.profile() >= 2 and s.count(S.CS_ROOT) == 1:
        log.warn("security", "DeleteCertificate: the last CentralSystemRootCertificate stays")
        return {"status": "Failed"}
    try:
        s.remove(e)
    except OSError as ex:
        log.warn("security", "DeleteCertificate: %s" % ex)
        return {"status": "Failed"}
    return {"status": "Accepted"}
