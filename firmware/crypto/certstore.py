# Trusted root certificates on flash: DER files under /certs/roots plus an index holding each one's
# use (an OCPP certificate type), fingerprint and hash data (issuer name/key hashes, serial number).
from hashlib import sha256
import log
import store.kv as kv

_DIR = "/certs"
_ROOTS = "/certs/roots"
_INDEX = "/certs/roots.json"


def fingerprint(der):
    return sha256(der).digest().hex()


def read_der(path, label="CERTIFICATE"):
    # DER bytes of a file holding DER or PEM (a certificate, or label=None: the first block of any
    # kind, e.g. a key); None when it is missing or unreadable.
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:10] == b"-----BEGIN":
        from crypto import pem

        try:
            return pem.blocks(data)[0][1] if label is None else pem.decode(data, label)
        except (ValueError, IndexError) as e:
            log.warn("certs", "%s: %s" % (path, e))
            return None
    return data


def read_cert(path):
    return read_der(path)


class Store:
    def __init__(self):
        self._ix = None  # {"certs": [entry], "removed": [fingerprint], "n": next file number}

    def _index(self):
        if self._ix is None:
            ix = kv.load(_INDEX)
            if not isinstance(ix, dict):
                ix = {"certs": [], "removed": [], "n": 1}
            self._ix = ix
        return self._ix

    def _save(self):
        kv.save(_INDEX, self._ix)

    def entries(self, use=None):
        return [e for e in self._index()["certs"] if use is None or e["use"] == use]

    def count(self, use=None):
        return len(self.entries(use))

    def ders(self, use):
        # DER bytes of every certificate of this use (the TLS trust anchors).
        out = []
        for e in self.entries(use):
            der = read_cert(e["file"])
            if der is not None:
                out.append(der)
        return out

    def certs(self, use):
        from crypto import x509

        out = []
        for der in self.ders(use):
            try:
                out.append(x509.Cert(der))
            except ValueError:
                pass
        return out

    def hash_data(self, use):
        return [dict(e["hash"]) for e in self.entries(use)]

    def find(self, hd):
        # The entry matching a CertificateHashData (SHA256 only; hex compared case-insensitively).
        if hd.get("hashAlgorithm") != "SHA256":
            return None
        want = (hd["issuerNameHash"].lower(), hd["issuerKeyHash"].lower(),
                hd["serialNumber"].lower().lstrip("0") or "0")
        for e in self._index()["certs"]:
            h = e["hash"]
            if (h["issuerNameHash"], h["issuerKeyHash"], h["serialNumber"]) == want:
                return e
        return None

    def has(self, der, use):
        fp = fingerprint(der)
        for e in self.entries(use):
            if e["fp"] == fp:
                return True
        return False

    def _issuer_key(self, cert):
        # The issuer's public key: the certificate's own for a root, else an installed issuer's.
        if cert.self_issued():
            return cert.public_key
        for use in ("CentralSystemRootCertificate", "ManufacturerRootCertificate"):
            for c in self.certs(use):
                if c.subject == cert.issuer:
                    return c.public_key
        return None

    def add(self, use, der, cert):
        # Store a parsed certificate; raises OSError when flash refuses.
        ix = self._index()
        if self.has(der, use):
            return
        key = self._issuer_key(cert)
        if key is None:
            # issuer not on the device: RFC 6960 wants the issuer's key; the best we can name
            log.warn("certs", "issuer of %s not installed: key hash from its own key" % cert.cn())
            key = cert.public_key
        hd = {"hashAlgorithm": "SHA256", "issuerNameHash": sha256(cert.issuer).digest().hex(),
              "issuerKeyHash": sha256(key).digest().hex(), "serialNumber": cert.serial_hex()}
        kv.ensure_dir(_DIR)
        kv.ensure_dir(_ROOTS)
        path = "%s/%d.der" % (_ROOTS, ix["n"])
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(der)
        kv.rename(tmp, path)
        fp = fingerprint(der)
        ix["n"] += 1
        ix["certs"].append({"use": use, "file": path, "fp": fp, "hash": hd})
        if fp in ix["removed"]:
            ix["removed"].remove(fp)
        self._save()

    def remove(self, entry):
        ix = self._index()
        ix["certs"].remove(entry)
        if entry.get("seeded"):
            ix["removed"].append(entry["fp"])  # a factory certificate stays deleted after a reboot
        self._save()
        kv.remove(entry["file"])

    def seed(self, use, path):
        # Factory provisioning: adopt a certificate file from the instance's config as installed,
        # unless the back-end deleted it earlier.
        der = read_cert(path)
        if der is None:
            return
        ix = self._index()
        fp = fingerprint(der)
        if fp in ix["removed"] or self.has(der, use):
            return
        from crypto import x509

        try:
            cert = x509.Cert(der)
            self.add(use, der, cert)
        except (ValueError, OSError) as e:
            log.warn("certs", "cannot adopt %s: %s" % (path, e))
            return
        for e in ix["certs"]:
            if e["fp"] == fp:
                e["seeded"] = True
        self._save()
