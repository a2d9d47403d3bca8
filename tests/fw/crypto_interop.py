# MicroPython side of test_crypto_interop.py: reads a JSON job from the file named by argv[1], makes
# keys/CSRs/signatures and checks the peer's material, prints one JSON result line.
import sys
import json
import time
from hashlib import sha256
from binascii import hexlify, unhexlify
from crypto import csr, p256, pem, x509


def hx(b):
    return hexlify(b).decode()


def main(path):
    with open(path) as f:
        job = json.load(f)
    out = {}
    t0 = time.ticks_ms()
    d, pub = p256.keypair()
    t1 = time.ticks_ms()
    subject = csr.make_name([(x509.O, job["org"]), (x509.CN, job["cn"])])
    req = p256.run(csr.g_csr(d, pub, subject))
    t2 = time.ticks_ms()
    out["csr"] = pem.encode(req, "CERTIFICATE REQUEST")
    out["key"] = hx(csr.ec_key_der(d, pub))
    sigs = []
    for m in job["messages"]:
        sigs.append(hx(p256.sign(d, sha256(m.encode()).digest())))
    t3 = time.ticks_ms()
    out["sigs"] = sigs
    # the peer's signatures: [message, public key hex, signature DER hex]
    res = []
    for m, pk, sig in job["verify"]:
        res.append(p256.verify(unhexlify(pk), sha256(m.encode()).digest(), unhexlify(sig)))
    t4 = time.ticks_ms()
    out["verified"] = res
    out["publics"] = [hx(p256.public(int(k, 16))) for k in job["scalars"]]
    chains = []
    for text in job["chains"]:
        certs = [x509.Cert(der) for _, der in pem.blocks(text)]
        ok = [p256.run(a.g_signed_by(b)) for a, b in zip(certs, certs[1:])]
        c = certs[-1]
        chains.append({"ok": ok, "cn": [x.cn() for x in certs], "serial": c.serial_hex(),
                       "name_hash": hx(sha256(c.issuer).digest()),
                       "key_hash": hx(sha256(c.public_key).digest()),
                       "not_after": c.not_after})
    out["chains"] = chains
    out["ms"] = {"keygen": time.ticks_diff(t1, t0), "csr": time.ticks_diff(t2, t1),
                 "sign": time.ticks_diff(t3, t2) // max(1, len(job["messages"])),
                 "verify": time.ticks_diff(t4, t3) // max(1, len(job["verify"]))}
    print(json.dumps(out))


main(sys.argv[1])
