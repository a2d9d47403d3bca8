# Self-contained checks of the crypto package on the unix port: DER, PEM, P-256 ECDSA against the
# RFC 6979 A.2.5 vectors, X.509 parsing and chain checks (EC and RSA), CSR and key files.
import mptest
from hashlib import sha256
from crypto import asn1, csr, pem, p256, x509

from crypto_fixtures import EC_ROOT, EC_LEAF, RSA_ROOT, RSA_LEAF, EC_ROOT_HASH, EC_ROOT_VALID

# RFC 6979 A.2.5: P-256 key
D = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
UX = 0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6
UY = 0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299


def test_der_integers_lengths_oids():
    assert asn1.integer(0) == b"\x02\x01\x00"
    assert asn1.integer(127) == b"\x02\x01\x7f"
    assert asn1.integer(128) == b"\x02\x02\x00\x80"
    assert asn1.integer(256) == b"\x02\x02\x01\x00"
    long = asn1.octets(bytes(300))
    assert long[:4] == b"\x04\x82\x01\x2c"
    assert asn1.header(long, 0) == (4, 4, 304)
    assert asn1.oid("1.2.840.10045.3.1.7") == bytes.fromhex("06082a8648ce3d030107")
    o = asn1.oid("2.5.29.19")
    assert asn1.to_oid(o, 2, len(o)) == "2.5.29.19"
    i = asn1.integer(2 ** 200 + 5)
    assert asn1.to_uint(i, 2, len(i)) == 2 ** 200 + 5


def test_der_rejects_bad_lengths():
    for bad in (b"\x30\x05\x01", b"\x30\x81\x05" + bytes(5), b"\x30\x80\x00\x00", b"\x30"):
        try:
            asn1.header(bad, 0)
        except asn1.Asn1Error:
            continue
        raise AssertionError("accepted %r" % bad)


def test_set_of_is_sorted():
    assert asn1.set_of(b"\x02\x01\x05", b"\x02\x01\x01") == b"\x31\x06\x02\x01\x01\x02\x01\x05"


def test_pem_round_trip_and_errors():
    der = bytes(range(200))
    text = pem.encode(der, "TEST")
    assert text.startswith("-----BEGIN TEST-----\n") and text.endswith("-----END TEST-----\n")
    assert max(len(line) for line in text.split("\n")) == 64
    assert pem.decode(text, "TEST") == der
    assert [l for l, _ in pem.blocks(EC_LEAF + EC_ROOT)] == ["CERTIFICATE", "CERTIFICATE"]
    for bad in ("-----BEGIN X-----\nAAAA\n", "-----BEGIN X-----\nAAA\n-----END X-----"):
        try:
            pem.blocks(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % bad)
    try:
        pem.decode("no pem here")
        raise AssertionError("no block accepted")
    except ValueError:
        pass


def test_rfc6979_public_key_and_signatures():
    assert p256.public(D) == p256.point_bytes(UX, UY)
    r, s = p256.run(p256.g_sign(D, sha256(b"sample").digest()))
    assert r == 0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
    assert s == 0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8
    r, s = p256.run(p256.g_sign(D, sha256(b"test").digest()))
    assert r == 0xF1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367
    assert s == 0x019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083


def test_sign_verify_round_trip_and_tampering():
    d, pub = p256.keypair()
    h = sha256(b"firmware image").digest()
    sig = p256.sign(d, h)
    assert p256.verify(pub, h, sig)
    assert not p256.verify(pub, sha256(b"other").digest(), sig)
    r, s = p256.sig_parse(sig)
    assert not p256.run(p256.g_verify(pub, h, r, (s + 1) % p256.N))
    assert not p256.run(p256.g_verify(pub, h, 0, s))
    assert not p256.verify(p256.public(D), h, sig)
    assert not p256.verify(b"\x04" + bytes(64), h, sig)   # not on the curve


def test_compressed_point():
    x, y = p256.parse_point(p256.point_bytes(UX, UY))
    comp = bytes((2 + (y & 1),)) + x.to_bytes(32, "big")
    assert p256.parse_point(comp) == (UX, UY)


def test_async_driver_yields():
    import asyncio

    ticks = []

    async def ticker():
        while True:
            ticks.append(1)
            await asyncio.sleep_ms(0)

    async def main():
        t = asyncio.create_task(ticker())
        d, pub = await p256.arun(p256.g_keypair(), slice_ms=1)
        t.cancel()
        return pub

    pub = asyncio.run(main())
    assert len(pub) == 65
    assert len(ticks) > 3, ticks


def test_parse_ec_certificate():
    c = x509.Cert(pem.decode(EC_ROOT))
    assert c.version == 3 and c.ca is True and c.self_issued()
    assert c.cn() == "Fixture EC Root"
    assert c.key_alg == x509.EC_PUBKEY and c.key_param == x509.P256 and len(c.public_key) == 65
    assert (c.not_before, c.not_after) == EC_ROOT_VALID
    assert c.serial_hex() == EC_ROOT_HASH[2]
    assert sha256(c.issuer).digest().hex() == EC_ROOT_HASH[0]
    assert sha256(c.public_key).digest().hex() == EC_ROOT_HASH[1]
    leaf = x509.Cert(pem.decode(EC_LEAF))
    assert leaf.cn() == "CP-FIX" and leaf.ca is False and leaf.issuer == c.subject


def test_chain_signatures_ec_and_rsa():
    root = x509.Cert(pem.decode(EC_ROOT))
    leaf = x509.Cert(pem.decode(EC_LEAF))
    assert p256.run(leaf.g_signed_by(root))
    assert p256.run(root.g_signed_by(root))
    rroot = x509.Cert(pem.decode(RSA_ROOT))
    rleaf = x509.Cert(pem.decode(RSA_LEAF))
    assert rroot.key_alg == x509.RSA and rleaf.sig_alg == x509.RSA_SHA256
    assert p256.run(rleaf.g_signed_by(rroot)) and p256.run(rroot.g_signed_by(rroot))
    rbad = bytearray(rleaf.der)
    rbad[-7] ^= 1
    assert not p256.run(x509.Cert(bytes(rbad)).g_signed_by(rroot))
    try:
        p256.run(leaf.g_signed_by(rroot))   # an ECDSA signature and an RSA key do not go together
        raise AssertionError("mismatch accepted")
    except x509.Unsupported:
        pass
    bad = bytearray(leaf.der)
    bad[-5] ^= 1   # inside the signature
    assert not p256.run(x509.Cert(bytes(bad)).g_signed_by(root))


def test_csr_and_key_file():
    d, pub = p256.keypair()
    subject = csr.make_name([(x509.O, "CPO"), (x509.CN, "CP77")])
    der = p256.run(csr.g_csr(d, pub, subject))
    name, key, info, alg, sig = csr.parse_csr(der)
    assert name == subject and key == (x509.EC_PUBKEY, x509.P256, pub) and alg == x509.ECDSA_SHA256
    assert p256.run(x509.g_check(info, alg, sig, key))
    assert x509.name_attrs(name) == [(x509.O, "CPO"), (x509.CN, "CP77")]
    kd = csr.ec_key_der(d, pub)
    assert csr.parse_ec_key(kd) == (d, pub)


def test_truncated_certificate_is_an_error():
    der = pem.decode(EC_ROOT)
    for cut in (1, 10, len(der) // 2, len(der) - 1):
        try:
            x509.Cert(der[:cut])
        except ValueError:
            continue
        raise AssertionError("truncated at %d accepted" % cut)


mptest.run(globals())
