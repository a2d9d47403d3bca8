# RSASSA-PKCS1-v1_5 signature check with SHA-256 (RFC 8017 8.2.2): one pow() with a small exponent.
from crypto import asn1

# DigestInfo prefix of a SHA-256 hash (RFC 8017 9.2, note 1)
_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def verify(pub, digest, signature):
    # True if signature is digest's under pub (an RSAPublicKey DER). ValueError if pub is bad.
    s, e = asn1.expect(pub, 0, asn1.SEQ)
    kids = asn1.children(pub, s, e)
    n = asn1.to_uint(pub, kids[0][1], kids[0][2])
    exp = asn1.to_uint(pub, kids[1][1], kids[1][2])
    k = len(asn1.uint_bytes(n))
    if len(signature) != k:
        return False
    sig = int.from_bytes(signature, "big")
    if sig >= n:
        return False
    em = pow(sig, exp, n).to_bytes(k, "big")
    t = _SHA256_INFO + digest
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
