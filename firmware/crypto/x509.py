# Just enough X.509 (RFC 5280) for a charge point: read a certificate's names, key, validity and
# extensions, and check who signed it (ECDSA P-256 or RSA, SHA-256). CSRs and keys: crypto.csr.
from hashlib import sha256
from crypto import asn1

EC_PUBKEY = "1.2.840.10045.2.1"
P256 = "1.2.840.10045.3.1.7"
RSA = "1.2.840.113549.1.1.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
RSA_SHA256 = "1.2.840.113549.1.1.11"
CN = "2.5.4.3"
O = "2.5.4.10"
OU = "2.5.4.11"
C = "2.5.4.6"
_BASIC_CONSTRAINTS = "2.5.29.19"


class Unsupported(ValueError):
    # A signature or key algorithm this firmware cannot check (anything but P-256/RSA with SHA-256).
    pass


def _alg(buf, s, e):
    # AlgorithmIdentifier -> (oid, parameter oid or None)
    kids = asn1.children(buf, s, e)
    if not kids or kids[0][0] != asn1.OID:
        raise asn1.Asn1Error("bad AlgorithmIdentifier")
    param = None
    if len(kids) > 1 and kids[1][0] == asn1.OID:
        param = asn1.to_oid(buf, kids[1][1], kids[1][2])
    return asn1.to_oid(buf, kids[0][1], kids[0][2]), param


class Cert:
    # A parsed certificate. Byte fields are whole DER TLVs unless said otherwise.
    def __init__(self, der):
        der = bytes(der)
        self.der = der
        s, e = asn1.expect(der, 0, asn1.SEQ)
        if e != len(der):
            raise asn1.Asn1Error("trailing bytes after certificate")
        top = asn1.tlvs(der, s, e)
        if len(top) != 3 or top[0][0] != asn1.SEQ or top[2][0] != asn1.BITS:
            raise asn1.Asn1Error("not a certificate")
        self.tbs = der[top[0][3] : top[0][2]]
        self.sig_alg = _alg(der, top[1][1], top[1][2])[0]
        self.signature = asn1.to_bits(der, top[2][1], top[2][2])
        f = asn1.tlvs(der, top[0][1], top[0][2])
        i = 0
        self.version = 1
        if f[0][0] == 0xA0:
            v = asn1.children(der, f[0][1], f[0][2])
            self.version = asn1.to_uint(der, v[0][1], v[0][2]) + 1
            i = 1
        t, ss, se, _ = f[i]
        if t != asn1.INT:
            raise asn1.Asn1Error("bad serial number")
        self.serial = bytes(der[ss:se])  # raw two's complement content
        self.issuer = der[f[i + 2][3] : f[i + 2][2]]
        val = asn1.children(der, f[i + 3][1], f[i + 3][2])
        self.not_before = asn1.to_time(der, val[0][0], val[0][1], val[0][2])
        self.not_after = asn1.to_time(der, val[1][0], val[1][1], val[1][2])
        self.subject = der[f[i + 4][3] : f[i + 4][2]]
        t, ks, ke, ki = f[i + 5]
        self.spki = der[ki:ke]
        self.key_alg, self.key_param, self.public_key = spki(der, ks, ke)
        self.ca = None  # basicConstraints cA, None when the extension is absent
        for t, xs, xe, _ in f[i + 6 :]:
            if t == 0xA3:
                _, ls, le = asn1.header(der, xs, xe)
                for _, es, ee in asn1.children(der, ls, le):
                    self._extension(der, es, ee)

    def _extension(self, der, s, e):
        kids = asn1.children(der, s, e)
        if asn1.to_oid(der, kids[0][1], kids[0][2]) != _BASIC_CONSTRAINTS:
            return
        _, vs, ve = kids[-1]
        bs, be = asn1.expect(der, vs, asn1.SEQ, ve)
        bc = asn1.children(der, bs, be)
        self.ca = bool(bc) and bc[0][0] == asn1.BOOL and der[bc[0][1]] != 0

    def serial_hex(self):
        # Lower-case hex without leading zeros (how OCPP's CertificateHashData carries it).
        h = self.serial.hex().lstrip("0")
        return h or "0"

    def self_issued(self):
        return self.issuer == self.subject

    def valid_at(self, epoch):
        return self.not_before <= epoch <= self.not_after

    def cn(self):
        return name_value(self.subject, CN)

    def g_signed_by(self, issuer):
        # Generator: True if issuer's key made this certificate's signature. Raises Unsupported.
        ok = yield from g_check(self.tbs, self.sig_alg, self.signature, issuer)
        return ok


def spki(buf, s, e):
    kids = asn1.children(buf, s, e)
    if len(kids) != 2 or kids[1][0] != asn1.BITS:
        raise asn1.Asn1Error("bad SubjectPublicKeyInfo")
    alg, param = _alg(buf, kids[0][1], kids[0][2])
    return alg, param, asn1.to_bits(buf, kids[1][1], kids[1][2])


def parse(der):
    return Cert(der)


def name_attrs(name):
    # [(oid, text)] of a Name's attributes, in order.
    out = []
    s, e = asn1.expect(name, 0, asn1.SEQ)
    for _, rs, re in asn1.children(name, s, e):
        for _, as_, ae in asn1.children(name, rs, re):
            kids = asn1.children(name, as_, ae)
            v = kids[1]
            oid = asn1.to_oid(name, kids[0][1], kids[0][2])
            out.append((oid, bytes(name[v[1] : v[2]]).decode()))
    return out


def name_value(name, oid):
    for k, v in name_attrs(name):
        if k == oid:
            return v
    return None


# ---- signatures over DER structures


def g_check(data, sig_alg, signature, issuer):
    # Generator: True if signature (as carried in a certificate/CSR) over data verifies with the
    # key of issuer (a Cert, or a (key_alg, key_param, public_key) triple). Raises Unsupported.
    if isinstance(issuer, Cert):
        key = (issuer.key_alg, issuer.key_param, issuer.public_key)
    else:
        key = issuer
    digest = sha256(data).digest()
    if sig_alg == ECDSA_SHA256 and key[0] == EC_PUBKEY and key[1] == P256:
        from crypto import p256

        try:
            r, s = p256.sig_parse(signature)
        except ValueError:
            return False
        ok = yield from p256.g_verify(key[2], digest, r, s)
        return ok
    if sig_alg == RSA_SHA256 and key[0] == RSA:
        from crypto.rsa import verify

        return verify(key[2], digest, signature)
    raise Unsupported("signature %s with key %s/%s" % (sig_alg, key[0], key[1]))
