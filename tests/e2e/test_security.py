"""OCPP 1.6 security extension end to end (whitepaper edition 2, TC_073-TC_087): real firmware on the
unix port against real CSMS instances with run-time PKIs (tools.csms.certs): Basic auth, TLS with
server verification, mutual TLS, a CSR made and signed on the charger, root certificates, signed
firmware, security events."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.fwbundle import Bundle, build_bundle
from tools.csms import Csms, CsmsConfig, certs
from tools.fwserver import FwServer

from .conftest import TAGS

PW = "0123456789abcdef0123"     # 20 characters: a valid AuthorizationKey for profiles 1 and 2


@pytest.fixture
def start(start_charger: Any) -> Any:
    """start(id="CP1", wait=True, **config): conftest's start_charger, waiting on whichever CSMS the
    charger is configured for (these tests run several)."""

    async def run(cid: str = "CP1", wait: bool = True, **cfg: Any) -> Any:
        other = "csms_url" in cfg
        inst = await start_charger(cid, wait=wait and not other, **cfg)
        if wait and other and not inst.state.registered:   # another CSMS of the test
            await inst.wait_event(lambda ev: ev.get("ev") == "boot" and ev.get("status") == "Accepted",
                                  timeout=20)
        return inst

    return run


def der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def hash_data(pem: bytes) -> dict[str, str]:
    """CertificateHashData of a root certificate, computed the RFC 6960 way with cryptography."""
    c = x509.load_pem_x509_certificate(pem)
    pub = c.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        key = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    else:   # RSA: the subjectPublicKey bit string holds the PKCS#1 RSAPublicKey
        key = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return {"hashAlgorithm": "SHA256", "issuerNameHash": hashlib.sha256(c.issuer.public_bytes()).hexdigest(),
            "issuerKeyHash": hashlib.sha256(key).hexdigest(), "serialNumber": format(c.serial_number, "x")}


def now_iso(delta_s: float = 0) -> str:
    t = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@asynccontextmanager
async def tls_csms(tmp: Path, name: str, ca: tuple[bytes, bytes], *, client_ca: bytes | None = None,
                   signer: tuple[bytes, bytes] | None = None, password: str | None = None,
                   **config: Any) -> AsyncIterator[Csms]:
    """A wss:// CSMS whose server certificate (localhost, 127.0.0.1) is issued by `ca`."""
    cert, key = certs.make_cert(ca[0], ca[1], "localhost")
    cert_path, key_path = certs.write_pem(tmp, name, cert, key)
    opts: dict[str, Any] = {"tls_cert": cert_path, "tls_key": key_path}
    if client_ca is not None:
        (tmp / f"{name}-client-ca.pem").write_bytes(client_ca)
        opts["client_ca"] = str(tmp / f"{name}-client-ca.pem")
    if signer is not None:
        opts["signing_ca_cert"], opts["signing_ca_key"] = certs.write_pem(tmp, f"{name}-signer", *signer)
    cfg = CsmsConfig(heartbeat_interval=300)
    cfg.update({"tags": dict(TAGS), **config})
    if password is not None:
        cfg.update({"passwords": {"CP1": password}})
    async with Csms(cfg, **opts) as c:
        yield c
    bad = c.violations()
    assert not bad, f"the firmware sent invalid OCPP messages: {[r.to_dict() for r in bad]}"


def flash(tmp_path: Path, cid: str = "CP1") -> Path:
    d = tmp_path / cid
    (d / "certs").mkdir(parents=True, exist_ok=True)
    return d


async def security_event(csms: Csms, kind: str, since: int = 0, timeout: float = 10) -> dict:
    rec = await csms.wait_for("SecurityEventNotification", cp_id="CP1", match={"type": kind},
                              since=since, timeout=timeout)
    return rec.payload


async def events_on_any(servers: tuple[Csms, ...], kind: str, timeout: float = 10) -> list[dict]:
    """Events of a kind sent around a reconnection: on whichever link was up (usually the old one)."""
    for _ in range(int(timeout / 0.2)):
        evs = [r.payload for c in servers for r in c.records("CP1", "SecurityEventNotification",
                                                             direction="in", type="CALL")
               if r.payload["type"] == kind]
        if evs:
            return evs
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no SecurityEventNotification {kind}")


async def change(csms: Csms, key: str, value: str) -> str:
    return (await csms.call("CP1", "ChangeConfiguration", {"key": key, "value": value}))["status"]


# -- profile 1: HTTP Basic auth ----------------------------------------------------------------


async def test_basic_auth_and_authorization_key_change(start, csms: Csms) -> None:
    # TC_085, TC_073: the upgrade carries cp id + AuthorizationKey; a new key is used at once.
    csms.config.update({"passwords": {"CP1": PW}})
    await start("CP1", password=PW, ocpp={"SecurityProfile": 1})
    first = await csms.wait_for(type="EVENT", event="connect", cp_id="CP1")
    assert first.payload["tls"] is False
    assert not csms.records("CP1", type="EVENT", event="auth_failed")
    await security_event(csms, "StartupOfTheDevice")
    assert await change(csms, "AuthorizationKey", "short") == "Rejected"   # 16..40 characters
    new = "fedcba9876543210fedcba98"
    mark = csms.last_seq
    csms.config.update({"passwords": {"CP1": new}})   # the open connection stays authenticated
    assert await change(csms, "AuthorizationKey", new) == "Accepted"
    reconnect = await csms.wait_for(type="EVENT", event="connect", cp_id="CP1", since=mark, timeout=10)
    assert not csms.records("CP1", type="EVENT", event="auth_failed", since=mark)
    ev = await security_event(csms, "ReconfigurationOfSecurityParameters", since=mark)
    assert "AuthorizationKey" in ev["techInfo"]
    assert reconnect.seq > mark
    keys = await csms.get_configuration_values("CP1", ["AuthorizationKey", "SecurityProfile"])
    assert keys == {"SecurityProfile": "1"}      # write-only key never reported


async def test_wrong_password_is_reported_after_it_is_fixed(start, csms: Csms) -> None:
    csms.config.update({"passwords": {"CP1": "not-the-chargers-password"}})
    await start("CP1", wait=False, password=PW, ocpp={"SecurityProfile": 1})
    await csms.wait_for(type="EVENT", event="auth_failed", cp_id="CP1", timeout=10)
    assert not csms.records("CP1", "BootNotification")
    csms.config.update({"passwords": {"CP1": PW}})
    await csms.wait_for("BootNotification", cp_id="CP1", timeout=10)
    ev = await security_event(csms, "FailedToAuthenticateAtCentralSystem")
    assert ev["techInfo"] == "HTTP 401"


async def test_profile_downgrade_and_unmet_upgrades_are_rejected(start, csms: Csms) -> None:
    # TC_084 and the preconditions of an upgrade (root certificate, client certificate).
    csms.config.update({"passwords": {"CP1": PW}})
    await start("CP1", password=PW, ocpp={"SecurityProfile": 1})
    assert await change(csms, "SecurityProfile", "0") == "Rejected"
    assert await change(csms, "SecurityProfile", "2") == "Rejected"   # no CentralSystemRootCertificate
    assert await change(csms, "SecurityProfile", "3") == "Rejected"
    assert await change(csms, "SecurityProfile", "4") == "Rejected"
    assert await change(csms, "SecurityProfile", "x") == "Rejected"
    assert await change(csms, "SecurityProfile", "1") == "Accepted"   # unchanged: nothing to do
    assert (await csms.get_configuration_values("CP1", ["SecurityProfile"])) == {"SecurityProfile": "1"}


# -- profile 2: TLS with server verification ---------------------------------------------------


async def test_upgrade_to_profile_2_with_a_runtime_ca(start, csms: Csms, tmp_path: Path) -> None:
    # TC_075_2, TC_083, TC_086: install the CSMS root, upgrade, reconnect over TLS with Basic auth.
    ca = certs.make_ca("Run-time CSMS root")
    async with tls_csms(tmp_path, "sp2", ca, password=PW) as secure:
        csms.config.update({"passwords": {"CP1": PW}})
        await start("CP1", password=PW, ocpp={"SecurityProfile": 1},
                            csms_url_sp2=secure.url + "/ocpp")
        reply = await csms.call("CP1", "InstallCertificate", {"certificateType": "CentralSystemRootCertificate",
                                                              "certificate": ca[0].decode()})
        assert reply == {"status": "Accepted"}
        ids = await csms.call("CP1", "GetInstalledCertificateIds",
                              {"certificateType": "CentralSystemRootCertificate"})
        assert ids == {"status": "Accepted", "certificateHashData": [hash_data(ca[0])]}
        assert await change(csms, "SecurityProfile", "2") == "Accepted"
        conn = await secure.wait_for(type="EVENT", event="connect", cp_id="CP1", timeout=15)
        assert conn.payload["tls"] is True
        evs = await events_on_any((csms, secure), "ReconfigurationOfSecurityParameters")
        assert [e["techInfo"] for e in evs] == ["SecurityProfile 1 -> 2"]
        assert await secure.get_configuration_values("CP1", ["SecurityProfile"]) == {"SecurityProfile": "2"}
        # the last root in use cannot go; a downgrade neither
        reply = await secure.call("CP1", "DeleteCertificate", {"certificateHashData": hash_data(ca[0])})
        assert reply == {"status": "Failed"}
        assert await change(secure, "SecurityProfile", "1") == "Rejected"
        # still answering over TLS
        assert (await secure.call("CP1", "ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"})
                ) == {"status": "Accepted"}
        await secure.wait_for("Heartbeat", cp_id="CP1", timeout=5)


async def test_server_certificate_from_wrong_ca_is_refused_and_reported(
        start, tmp_path: Path) -> None:
    # TC_078: no BootNotification reaches a CSMS the charger does not trust; the event comes later.
    trusted = certs.make_ca("Trusted CSMS root")
    rogue = certs.make_ca("Rogue root")
    (flash(tmp_path) / "certs" / "ca.der").write_bytes(der(trusted[0]))
    async with tls_csms(tmp_path, "rogue", rogue, password=PW) as secure:
        cp = await start("CP1", wait=False, password=PW, csms_url=secure.url + "/ocpp",
                                 ocpp={"SecurityProfile": 2})
        await asyncio.sleep(3)
        assert not secure.records("CP1", type="EVENT", event="connect")
        assert not secure.records("CP1")
        assert not cp.state.registered
        # the operator fixes the server certificate; same port, now issued by the trusted root
        cert, key = certs.make_cert(trusted[0], trusted[1], "localhost")
        secure.options.tls_cert, secure.options.tls_key = certs.write_pem(tmp_path, "fixed", cert, key)
        await secure.stop()
        await secure.start()
        await secure.wait_for("BootNotification", cp_id="CP1", timeout=15)
        ev = await security_event(secure, "InvalidCentralSystemCertificate")
        assert "not correctly signed" in ev["techInfo"]


async def test_unreachable_new_profile_falls_back(start, csms: Csms, tmp_path: Path) -> None:
    # An accepted upgrade whose endpoint never answers must not cut the charger off for good: after
    # five failed attempts it goes back to the previous profile and says so.
    ca = certs.make_ca("Run-time CSMS root")
    csms.config.update({"passwords": {"CP1": PW}})
    await start("CP1", password=PW, ocpp={"SecurityProfile": 1}, csms_url_sp2="wss://127.0.0.1:9/ocpp")
    await csms.call("CP1", "InstallCertificate", {"certificateType": "CentralSystemRootCertificate",
                                                  "certificate": ca[0].decode()})
    mark = csms.last_seq
    assert await change(csms, "SecurityProfile", "2") == "Accepted"
    await csms.wait_for(type="EVENT", event="disconnect", cp_id="CP1", since=mark, timeout=5)
    back = await csms.wait_for(type="EVENT", event="connect", cp_id="CP1", since=mark, timeout=30)
    ev = await security_event(csms, "ReconfigurationOfSecurityParameters", since=back.seq, timeout=10)
    assert ev["techInfo"].startswith("SecurityProfile 2 failed") and ev["techInfo"].endswith("back to 1")
    assert await csms.get_configuration_values("CP1", ["SecurityProfile"]) == {"SecurityProfile": "1"}


# -- profile 3: client certificates, CSR on the device ------------------------------------------


async def test_csr_certificate_signed_and_profile_3(start, tmp_path: Path) -> None:
    # TC_074, TC_087: ExtendedTriggerMessage → SignCertificate with a CSR made on the charger; the
    # CSMS signs it; the charger then authenticates with that certificate (CN = charge point id).
    server_ca = certs.make_ca("CSMS server root")
    cp_ca = certs.make_ca("Charge point CA")
    (flash(tmp_path) / "certs" / "ca.der").write_bytes(der(server_ca[0]))
    async with tls_csms(tmp_path, "sp2", server_ca, signer=cp_ca, password=PW) as sp2, \
            tls_csms(tmp_path, "sp3", server_ca, client_ca=cp_ca[0], require_client_cn=True) as sp3:
        await start("CP1", password=PW, csms_url=sp2.url + "/ocpp", csms_url_sp3=sp3.url + "/ocpp",
                            ocpp={"SecurityProfile": 2})
        assert await change(sp2, "SecurityProfile", "3") == "Rejected"   # no client certificate yet
        assert await change(sp2, "CpoName", "Fleet CPO") == "Accepted"
        mark = sp2.last_seq
        reply = await sp2.call("CP1", "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
        assert reply == {"status": "Accepted"}
        sign = await sp2.wait_for("SignCertificate", cp_id="CP1", since=mark, timeout=20)
        csr = x509.load_pem_x509_csr(sign.payload["csr"].encode())
        assert csr.is_signature_valid
        assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP1"
        assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Fleet CPO"
        assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey)
        # the CSMS signer answers with CertificateSigned on its own
        done = await sp2.wait_for("CertificateSigned", cp_id="CP1", direction="in", type="CALLRESULT",
                                  since=mark, timeout=20)
        assert done.payload == {"status": "Accepted"}
        await asyncio.sleep(0.5)   # signatures are checked after the answer
        leaf = x509.load_der_x509_certificate((tmp_path / "CP1" / "certs" / "cp.der").read_bytes())
        assert leaf.public_key().public_numbers() == csr.public_key().public_numbers()
        assert await change(sp2, "SecurityProfile", "3") == "Accepted"
        conn = await sp3.wait_for(type="EVENT", event="connect", cp_id="CP1", timeout=15)
        assert conn.payload["tls"] is True and conn.payload["client_cn"] == "CP1"
        assert not sp3.records("CP1", type="EVENT", event="auth_failed")
        evs = await events_on_any((sp2, sp3), "ReconfigurationOfSecurityParameters")
        assert [e["techInfo"] for e in evs] == ["SecurityProfile 2 -> 3"]
        # a renewal while on profile 3: the next connection uses the newer certificate
        mark3 = sp3.last_seq
        first_key = (tmp_path / "CP1" / "certs" / "cp.key").read_bytes()
        await sp3.call("CP1", "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
        sign2 = await sp3.wait_for("SignCertificate", cp_id="CP1", since=mark3, timeout=20)
        csr2 = x509.load_pem_x509_csr(sign2.payload["csr"].encode())
        chain = certs.sign_csr(sign2.payload["csr"].encode(), *cp_ca) + cp_ca[0]
        reply = await sp3.call("CP1", "CertificateSigned", {"certificateChain": chain.decode()})
        assert reply == {"status": "Accepted"}
        again = await sp3.wait_for(type="EVENT", event="connect", cp_id="CP1", since=mark3, timeout=15)
        assert again.payload["client_cn"] == "CP1"
        assert (tmp_path / "CP1" / "certs" / "cp.key").read_bytes() != first_key
        leaf2 = x509.load_der_x509_certificate((tmp_path / "CP1" / "certs" / "cp.der").read_bytes())
        assert leaf2.public_key().public_numbers() == csr2.public_key().public_numbers()


async def test_factory_client_certificate_mutual_tls(start, tmp_path: Path) -> None:
    # TC_087 with a provisioned (PEM) client certificate and key.
    server_ca = certs.make_ca("CSMS server root")
    cp_ca = certs.make_ca("Charge point CA")
    d = flash(tmp_path)
    (d / "certs" / "ca.pem").write_bytes(server_ca[0])
    cert, key = certs.make_cert(cp_ca[0], cp_ca[1], "CP1", client=True)
    (d / "certs" / "client.pem").write_bytes(cert)
    (d / "certs" / "client.key").write_bytes(key)
    async with tls_csms(tmp_path, "sp3", server_ca, client_ca=cp_ca[0], require_client_cn=True) as sp3:
        await start("CP1", csms_url=sp3.url + "/ocpp", ca="/certs/ca.pem", client_cert="/certs/client.pem",
                            client_key="/certs/client.key", ocpp={"SecurityProfile": 3})
        conn = await sp3.wait_for(type="EVENT", event="connect", cp_id="CP1")
        assert conn.payload["client_cn"] == "CP1"


async def test_invalid_certificate_signed_is_rejected(start, csms: Csms) -> None:
    # TC_077: garbage, a certificate without a pending request, one for another key → Rejected and
    # InvalidChargePointCertificate; the right one → Accepted.
    await start("CP1")
    cp_ca = certs.make_ca("Charge point CA")
    reply = await csms.call("CP1", "CertificateSigned", {"certificateChain": "not a certificate"})
    assert reply == {"status": "Rejected"}
    await security_event(csms, "InvalidChargePointCertificate")
    mark = csms.last_seq
    await csms.call("CP1", "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
    sign = await csms.wait_for("SignCertificate", cp_id="CP1", since=mark, timeout=20)
    other, _ = certs.make_cert(cp_ca[0], cp_ca[1], "CP1", client=True)     # someone else's key
    mark = csms.last_seq
    reply = await csms.call("CP1", "CertificateSigned", {"certificateChain": (other + cp_ca[0]).decode()})
    assert reply == {"status": "Rejected"}
    ev = await security_event(csms, "InvalidChargePointCertificate", since=mark)
    assert "key" in ev["techInfo"]
    wrong_cn = certs._issue(cp_ca[0], cp_ca[1], x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CP9")]),
                            x509.load_pem_x509_csr(sign.payload["csr"].encode()).public_key(), client=True)
    pem = wrong_cn.public_bytes(serialization.Encoding.PEM)
    assert (await csms.call("CP1", "CertificateSigned", {"certificateChain": pem.decode()}))["status"] == "Rejected"
    good = certs.sign_csr(sign.payload["csr"].encode(), *cp_ca)
    limit = (await csms.get_configuration_values("CP1", ["CertificateSignedMaxChainSize"]))
    assert int(limit["CertificateSignedMaxChainSize"]) >= len(good + cp_ca[0])
    reply = await csms.call("CP1", "CertificateSigned", {"certificateChain": (good + cp_ca[0]).decode()})
    assert reply == {"status": "Accepted"}


# -- root certificates ------------------------------------------------------------------------


async def test_install_list_delete_certificates(start, csms: Csms) -> None:
    # TC_075_1, TC_075_2, TC_076 and the Rejected/NotFound rules.
    await start("CP1")
    install = lambda t, pem: csms.call("CP1", "InstallCertificate",  # noqa: E731
                                       {"certificateType": t, "certificate": pem})
    ids = lambda t: csms.call("CP1", "GetInstalledCertificateIds", {"certificateType": t})  # noqa: E731
    assert await ids("ManufacturerRootCertificate") == {"status": "NotFound"}
    mfr = certs.make_ca("Manufacturer root")
    cs1 = certs.make_ca("CSMS root 1", kind="rsa")
    cs2 = certs.make_ca("CSMS root 2")
    assert await install("ManufacturerRootCertificate", mfr[0].decode()) == {"status": "Accepted"}
    assert await install("CentralSystemRootCertificate", cs1[0].decode()) == {"status": "Accepted"}
    assert await install("CentralSystemRootCertificate", cs2[0].decode()) == {"status": "Accepted"}
    assert await install("CentralSystemRootCertificate", cs2[0].decode()) == {"status": "Accepted"}  # again
    leaf, _ = certs.make_cert(cs2[0], cs2[1], "not-a-ca", client=True)
    assert await install("CentralSystemRootCertificate", leaf.decode()) == {"status": "Rejected"}
    assert await install("CentralSystemRootCertificate", "garbage") == {"status": "Rejected"}
    assert await ids("ManufacturerRootCertificate") == {"status": "Accepted",
                                                         "certificateHashData": [hash_data(mfr[0])]}
    listed = (await ids("CentralSystemRootCertificate"))["certificateHashData"]
    cs1_hash = hash_data(cs1[0])
    by_serial = lambda h: h["serialNumber"]  # noqa: E731
    assert sorted(listed, key=by_serial) == sorted([cs1_hash, hash_data(cs2[0])], key=by_serial)
    # delete (hex compared case-insensitively), then it is gone
    upper = dict(hash_data(cs2[0]), issuerNameHash=hash_data(cs2[0])["issuerNameHash"].upper())
    assert await csms.call("CP1", "DeleteCertificate", {"certificateHashData": upper}) == {"status": "Accepted"}
    assert await csms.call("CP1", "DeleteCertificate", {"certificateHashData": upper}) == {"status": "NotFound"}
    assert (await ids("CentralSystemRootCertificate"))["certificateHashData"] == [cs1_hash]
    # the store is bounded by CertificateStoreMaxLength (read-only)
    limit = int((await csms.get_configuration_values("CP1", ["CertificateStoreMaxLength"]))["CertificateStoreMaxLength"])
    statuses = []
    for i in range(limit):
        statuses.append((await install("CentralSystemRootCertificate", certs.make_ca(f"extra {i}")[0].decode()))["status"])
    assert statuses == ["Accepted"] * (limit - 2) + ["Rejected"] * 2
    assert await change(csms, "CertificateStoreMaxLength", "100") == "Rejected"


# -- ExtendedTriggerMessage ---------------------------------------------------------------------


async def test_extended_trigger_messages(start, csms: Csms) -> None:
    await start("CP1")
    trigger = lambda what, **kw: csms.call("CP1", "ExtendedTriggerMessage",  # noqa: E731
                                           {"requestedMessage": what, **kw})
    for what, action, payload in (("BootNotification", "BootNotification", None),
                                  ("Heartbeat", "Heartbeat", None),
                                  ("StatusNotification", "StatusNotification", {"connectorId": 1}),
                                  ("MeterValues", "MeterValues", {"connectorId": 1}),
                                  ("FirmwareStatusNotification", "SignedFirmwareStatusNotification",
                                   {"status": "Idle"}),
                                  ("LogStatusNotification", "LogStatusNotification", {"status": "Idle"})):
        mark = csms.last_seq
        kw = {"connectorId": 1} if what in ("StatusNotification", "MeterValues") else {}
        assert await trigger(what, **kw) == {"status": "Accepted"}, what
        await csms.wait_for(action, cp_id="CP1", match=payload, since=mark, timeout=5)
    assert await trigger("StatusNotification", connectorId=7) == {"status": "Rejected"}


# -- security events ----------------------------------------------------------------------------


async def test_boot_reset_and_clock_events(start, csms: Csms) -> None:
    cp = await start("CP1")
    ev = await security_event(csms, "StartupOfTheDevice")
    assert "techInfo" not in ev
    mark = csms.last_seq
    csms.config.update({"reply_overrides": {"Heartbeat": {"currentTime": "2030-01-01T00:00:00Z"}}})
    await csms.call("CP1", "ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"})
    ev = await security_event(csms, "SettingSystemTime", since=mark)
    assert ev["techInfo"].endswith("-> 2030-01-01T00:00:00Z")
    assert ev["timestamp"].startswith("2030-01-01T00:00")
    csms.config.update({"reply_overrides": {}})
    mark = csms.last_seq
    assert await csms.reset("CP1", "Soft") == "Accepted"
    ev = await security_event(csms, "ResetOrReboot", since=mark, timeout=20)
    assert ev["techInfo"] == "SoftReset"
    log = (cp.flash / "security.log").read_text().splitlines()
    kinds = [line.split()[1] for line in log]
    assert kinds[:2] == ["StartupOfTheDevice", "SettingSystemTime"] and "ResetOrReboot" in kinds


async def test_invalid_messages_are_logged_not_sent(start, csms: Csms) -> None:
    cp = await start("CP1")
    reply = await csms.send_raw("CP1", '[2,"bad-1","ChangeConfiguration",{"key":5}]')
    assert reply is not None and '"TypeConstraintViolation"' in reply
    await asyncio.sleep(0.5)
    assert "InvalidMessages" in (cp.flash / "security.log").read_text()
    assert not csms.records("CP1", "SecurityEventNotification", match={"type": "InvalidMessages"})


# -- signed firmware ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return build_bundle("2.0.0-signed", tmp_path_factory.mktemp("bundles") / "signed.tar")


@pytest.fixture
async def fwserver() -> AsyncIterator[FwServer]:
    async with FwServer() as srv:
        yield srv


def signer(mfr: tuple[bytes, bytes]) -> tuple[str, ec.EllipticCurvePrivateKey]:
    cert, key = certs.make_cert(mfr[0], mfr[1], "Firmware signer", client=True)
    return cert.decode(), serialization.load_pem_private_key(key, None)  # type: ignore[return-value]


async def signed_statuses(csms: Csms, since: int, until: str, timeout: float = 40) -> list[str]:
    await csms.wait_for("SignedFirmwareStatusNotification", cp_id="CP1", match={"status": until},
                        since=since, timeout=timeout)
    return [r.payload["status"] for r in csms.records("CP1", "SignedFirmwareStatusNotification",
                                                      direction="in", type="CALL", since=since)]


async def test_signed_firmware_update(start, csms: Csms, fwserver: FwServer, bundle: Bundle) -> None:
    # TC_080: verified with the signing certificate issued by the installed manufacturer root.
    cp = await start("CP1")
    mfr = certs.make_ca("Manufacturer root")
    assert (await csms.call("CP1", "InstallCertificate", {"certificateType": "ManufacturerRootCertificate",
                                                          "certificate": mfr[0].decode()}))["status"] == "Accepted"
    cert, key = signer(mfr)
    data = bundle.data()
    sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    url = fwserver.add_file("signed.tar", data)
    mark = csms.last_seq
    reply = await csms.call("CP1", "SignedUpdateFirmware", {
        "requestId": 41, "retries": 1, "retryInterval": 1,
        "firmware": {"location": url, "retrieveDateTime": now_iso(), "signingCertificate": cert,
                     "signature": base64.b64encode(sig).decode()}})
    assert reply == {"status": "Accepted"}
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=40)
    assert boot.payload["firmwareVersion"] == "2.0.0-signed"
    statuses = await signed_statuses(csms, mark, "Installed")
    assert statuses == ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
    assert all(r.payload["requestId"] == 41 for r in csms.records("CP1", "SignedFirmwareStatusNotification",
                                                                  direction="in", type="CALL", since=mark))
    ev = await security_event(csms, "FirmwareUpdated", since=mark, timeout=20)
    assert ev["techInfo"] == "1.0.0 -> 2.0.0-signed"
    assert cp.exits and cp.exits[-1].why == "reboot"


async def test_signed_firmware_bad_signature_and_certificate(start, csms: Csms, fwserver: FwServer,
                                                             bundle: Bundle) -> None:
    # TC_081: a signature that does not verify → InvalidSignature + InvalidFirmwareSignature; a
    # signing certificate from an unknown root → InvalidCertificate.
    cp = await start("CP1")
    mfr = certs.make_ca("Manufacturer root")
    await csms.call("CP1", "InstallCertificate", {"certificateType": "ManufacturerRootCertificate",
                                                  "certificate": mfr[0].decode()})
    cert, key = signer(mfr)
    data = bundle.data()
    sig = key.sign(data + b"tampered", ec.ECDSA(hashes.SHA256()))
    url = fwserver.add_file("signed.tar", data)
    mark = csms.last_seq
    fw = {"location": url, "retrieveDateTime": now_iso(), "signingCertificate": cert,
          "signature": base64.b64encode(sig).decode()}
    reply = await csms.call("CP1", "SignedUpdateFirmware", {"requestId": 42, "firmware": fw})
    assert reply == {"status": "Accepted"}
    statuses = await signed_statuses(csms, mark, "InvalidSignature")
    assert statuses == ["Downloading", "Downloaded", "InvalidSignature"]
    await security_event(csms, "InvalidFirmwareSignature", since=mark)
    assert not cp.exits                       # nothing installed, no reboot
    assert (await cp.request("info"))["fw_version"] == "1.0.0"
    rogue_cert, _ = signer(certs.make_ca("Rogue manufacturer"))
    mark = csms.last_seq
    reply = await csms.call("CP1", "SignedUpdateFirmware",
                            {"requestId": 43, "firmware": dict(fw, signingCertificate=rogue_cert)})
    assert reply == {"status": "InvalidCertificate"}
    await security_event(csms, "InvalidFirmwareSigningCertificate", since=mark)
