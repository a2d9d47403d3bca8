# Tests for crypto.certstore on the unix port: root certificates on flash with their OCPP hash data,
# lookup by CertificateHashData, factory seeding that respects a deletion, reload from flash.
import mptest

mptest.flash()

import os
from hashlib import sha256
from crypto import pem, x509
from crypto.certstore import Store, read_cert
from crypto_fixtures import EC_ROOT, EC_LEAF, RSA_ROOT, EC_ROOT_HASH

CS = "CentralSystemRootCertificate"
MF = "ManufacturerRootCertificate"


def _clean():
    # An empty store: no index, no certificate files.
    for path in ("/certs/roots.json",):
        try:
            os.remove(path)
        except OSError:
            pass
    try:
        for name in os.listdir("/certs/roots"):
            os.remove("/certs/roots/" + name)
    except OSError:
        pass


def _add(s, use, text):
    der = pem.decode(text)
    s.add(use, der, x509.Cert(der))
    return der


def test_hash_data_of_a_root():
    _clean()
    s = Store()
    _add(s, CS, EC_ROOT)
    hd = s.hash_data(CS)
    assert hd == [{"hashAlgorithm": "SHA256", "issuerNameHash": EC_ROOT_HASH[0],
                   "issuerKeyHash": EC_ROOT_HASH[1], "serialNumber": EC_ROOT_HASH[2]}]
    assert s.hash_data(MF) == [] and s.count() == 1 and s.count(CS) == 1


def test_find_is_case_insensitive_and_ignores_leading_zeros():
    _clean()
    s = Store()
    _add(s, CS, EC_ROOT)
    hd = {"hashAlgorithm": "SHA256", "issuerNameHash": EC_ROOT_HASH[0].upper(),
          "issuerKeyHash": EC_ROOT_HASH[1], "serialNumber": "00" + EC_ROOT_HASH[2].upper()}
    assert s.find(hd) is not None
    assert s.find(dict(hd, hashAlgorithm="SHA384")) is None
    assert s.find(dict(hd, serialNumber="1234")) is None


def test_same_certificate_once_per_use_and_reload():
    _clean()
    s = Store()
    der = _add(s, CS, EC_ROOT)
    _add(s, CS, EC_ROOT)
    _add(s, MF, EC_ROOT)
    _add(s, CS, RSA_ROOT)
    assert s.count(CS) == 2 and s.count(MF) == 1
    again = Store()   # the index and files are on flash
    assert again.count() == 3 and again.ders(MF) == [der]
    assert [c.cn() for c in again.certs(CS)] == ["Fixture EC Root", "Fixture RSA Root"]


def test_leaf_key_hash_uses_the_installed_issuer():
    _clean()
    s = Store()
    root = _add(s, MF, EC_ROOT)
    _add(s, CS, EC_LEAF)
    leaf_hd = s.hash_data(CS)[0]
    assert leaf_hd["issuerKeyHash"] == sha256(x509.Cert(root).public_key).digest().hex()
    assert leaf_hd["issuerNameHash"] == EC_ROOT_HASH[0]


def test_remove_deletes_file():
    _clean()
    s = Store()
    _add(s, CS, EC_ROOT)
    e = s.entries(CS)[0]
    s.remove(e)
    assert s.count() == 0
    try:
        open(e["file"]).close()
        raise AssertionError("file kept")
    except OSError:
        pass


def test_seed_from_pem_or_der_file_and_deletion_sticks():
    _clean()
    try:
        os.mkdir("/certs")
    except OSError:
        pass
    with open("/certs/factory.pem", "w") as f:
        f.write(EC_ROOT)
    with open("/certs/mfr.der", "wb") as f:
        f.write(pem.decode(RSA_ROOT))
    assert read_cert("/certs/factory.pem") == pem.decode(EC_ROOT)
    s = Store()
    s.seed(CS, "/certs/factory.pem")
    s.seed(MF, "/certs/mfr.der")
    s.seed(CS, "/certs/missing.der")
    assert s.count(CS) == 1 and s.count(MF) == 1
    s.seed(CS, "/certs/factory.pem")   # again: nothing new
    assert s.count(CS) == 1
    s.remove(s.entries(CS)[0])
    fresh = Store()                    # next boot: the back-end deleted it, it stays deleted
    fresh.seed(CS, "/certs/factory.pem")
    assert fresh.count(CS) == 0
    _add(fresh, CS, EC_ROOT)           # installed again on purpose: it is back
    assert fresh.count(CS) == 1
    os.remove("/certs/factory.pem")
    os.remove("/certs/mfr.der")


mptest.run(globals())
