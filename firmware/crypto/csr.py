# PKCS#10 certificate signing requests (RFC 2986) and SEC 1 EC private keys (RFC 5915) for the
# charge point's own P-256 key: what SignCertificate carries and what the TLS stack loads.
from hashlib import sha256
from crypto import asn1
from crypto.x509 import C, EC_PUBKEY, P256, ECDSA_SHA256, Unsupported, _alg, spki


def make_name(pairs):
    # Name from [(oid, text)]; UTF8String values, PrintableString for the country code.
    rdns = []
    for k, v in pairs:
        val = asn1.printable(v) if k == C else asn1.utf8(v)
        rdns.append(asn1.set_of(asn1.seq(asn1.oid(k), val)))
    return asn1.seq(*rdns)


def spki_p256(pub):
    return asn1.seq(asn1.seq(asn1.oid(EC_PUBKEY), asn1.oid(P256)), asn1.bits(pub))


def ec_key_der(d, pub):
    # SEC 1 C.4 ECPrivateKey with curve and public key: what mbedtls' load_cert_chain parses.
    return asn1.seq(asn1.integer(1), asn1.octets(d.to_bytes(32, "big")),
                    asn1.explicit(0, asn1.oid(P256)), asn1.explicit(1, asn1.bits(pub)))


def parse_ec_key(der):
    # (private scalar, public point bytes or None) of a P-256 key in SEC 1 or PKCS#8 form.
    der = bytes(der)
    s, e = asn1.expect(der, 0, asn1.SEQ)
    kids = asn1.children(der, s, e)
    if len(kids) >= 3 and kids[1][0] == asn1.SEQ and kids[2][0] == asn1.OCTETS:  # PKCS#8
        alg, param = _alg(der, kids[1][1], kids[1][2])
        if alg != EC_PUBKEY or param not in (None, P256):
            raise Unsupported("key is not P-256")
        return parse_ec_key(der[kids[2][1] : kids[2][2]])
    if len(kids) < 2 or kids[1][0] != asn1.OCTETS or asn1.to_uint(der, kids[0][1], kids[0][2]) != 1:
        raise asn1.Asn1Error("not an EC private key")
    pub = None
    for t, cs, ce in kids[2:]:
        if t == 0xA0:
            ps, pe = asn1.expect(der, cs, asn1.OID, ce)
            if asn1.to_oid(der, ps, pe) != P256:
                raise Unsupported("key is not P-256")
        elif t == 0xA1:
            bs, be = asn1.expect(der, cs, asn1.BITS, ce)
            pub = asn1.to_bits(der, bs, be)
    return int.from_bytes(der[kids[1][1] : kids[1][2]], "big"), pub


def csr_info(subject, pub):
    # CertificationRequestInfo: version 0, subject, P-256 key, no attributes.
    return asn1.seq(asn1.integer(0), subject, spki_p256(pub), b"\xa0\x00")


def g_csr(d, pub, subject):
    # Generator: DER PKCS#10 request for key (d, pub) and a Name, signed ECDSA-with-SHA256.
    from crypto import p256

    info = csr_info(subject, pub)
    r, s = yield from p256.g_sign(d, sha256(info).digest())
    return asn1.seq(info, asn1.seq(asn1.oid(ECDSA_SHA256)), asn1.bits(p256.sig_der(r, s)))


def parse_csr(der):
    # (subject Name DER, (key_alg, key_param, public key), info DER, sig_alg, signature)
    der = bytes(der)
    s, e = asn1.expect(der, 0, asn1.SEQ)
    top = asn1.tlvs(der, s, e)
    info = der[top[0][3] : top[0][2]]
    f = asn1.tlvs(der, top[0][1], top[0][2])
    subject = der[f[1][3] : f[1][2]]
    key = spki(der, f[2][1], f[2][2])
    alg = _alg(der, top[1][1], top[1][2])[0]
    return subject, key, info, alg, asn1.to_bits(der, top[2][1], top[2][2])
