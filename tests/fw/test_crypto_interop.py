"""The firmware's pure-MicroPython crypto (firmware/crypto) against CPython's `cryptography`: CSRs,
keys and ECDSA signatures made on the unix port verify with cryptography; signatures and certificate
chains (EC and RSA) made with cryptography verify on the unix port; hash data agrees."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

from harness.mpbin import BOARDS, FIRMWARE, run_mp
from tools.csms import certs

HERE = Path(__file__).parent
MESSAGES = ["", "hello", "x" * 1000, "firmware image v2"]
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551   # P-256 group order


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("interop")
    peer = ec.generate_private_key(ec.SECP256R1())
    pk = peer.public_key().public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint).hex()
    verify = []
    for m in MESSAGES:
        sig = peer.sign(m.encode(), ec.ECDSA(hashes.SHA256()))
        verify.append([m, pk, sig.hex()])                 # good
        verify.append([m + "!", pk, sig.hex()])           # other message
        r, s = decode_dss_signature(sig)
        verify.append([m, pk, encode_dss_signature(r, (s + 1) % N).hex()])
    scalars = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    ca, cak = certs.make_ca("Interop EC CA")
    leaf, _ = certs.make_cert(ca, cak, "CP-INTEROP", client=True)
    rca, rcak = certs.make_ca("Interop RSA CA", kind="rsa")
    rleaf, _ = certs.make_cert(rca, rcak, "signer", kind="rsa")
    other, _ = certs.make_ca("Interop other CA")
    job = {"cn": "CP-INTEROP", "org": "Interop CPO", "messages": MESSAGES, "verify": verify,
           "scalars": ["%x" % k.private_numbers().private_value for k in scalars],
           "chains": [(leaf + ca).decode(), (rleaf + rca).decode(), (leaf + other).decode()]}
    (tmp / "job.json").write_text(json.dumps(job))
    res = run_mp(HERE / "crypto_interop.py", str(tmp / "job.json"), path=[FIRMWARE, BOARDS / "unix", HERE],
                 cwd=tmp, timeout=120)
    out = res.stdout.decode(errors="replace")
    assert res.returncode == 0, out + res.stderr.decode(errors="replace")
    data = json.loads(out.strip().splitlines()[-1])
    data["job"] = job
    data["peer_scalars"] = scalars
    data["pems"] = {"ca": ca, "leaf": leaf, "rca": rca, "rleaf": rleaf, "other": other}
    print("unix port timings (ms):", data["ms"])
    return data


def test_csr_made_on_the_port_is_valid(result: dict) -> None:
    csr = x509.load_pem_x509_csr(result["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-INTEROP"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Interop CPO"
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    key = serialization.load_der_private_key(bytes.fromhex(result["key"]), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key().public_numbers() == csr.public_key().public_numbers()


def test_csr_is_signed_into_a_certificate_by_the_csms_signer(result: dict) -> None:
    ca, cak = certs.make_ca("Interop signer")
    leaf = x509.load_pem_x509_certificate(certs.sign_csr(result["csr"].encode(), ca, cak))
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-INTEROP"


def test_signatures_made_on_the_port_verify(result: dict) -> None:
    key = serialization.load_der_private_key(bytes.fromhex(result["key"]), None)
    pub = key.public_key()
    for m, sig in zip(MESSAGES, result["sigs"]):
        pub.verify(bytes.fromhex(sig), m.encode(), ec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):
            pub.verify(bytes.fromhex(sig), (m + "?").encode(), ec.ECDSA(hashes.SHA256()))


def test_port_verifies_peer_signatures(result: dict) -> None:
    assert result["verified"] == [True, False, False] * len(MESSAGES)


def test_public_keys_agree(result: dict) -> None:
    for k, got in zip(result["peer_scalars"], result["publics"]):
        want = k.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint).hex()
        assert got == want


def test_chains_and_hash_data(result: dict) -> None:
    ec_chain, rsa_chain, wrong = result["chains"]
    assert ec_chain["ok"] == [True] and ec_chain["cn"] == ["CP-INTEROP", "Interop EC CA"]
    assert rsa_chain["ok"] == [True]
    assert wrong["ok"] == [False]
    ca = x509.load_pem_x509_certificate(result["pems"]["ca"])
    pub = ca.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert ec_chain["name_hash"] == hashlib.sha256(ca.issuer.public_bytes()).hexdigest()
    assert ec_chain["key_hash"] == hashlib.sha256(pub).hexdigest()
    assert ec_chain["serial"] == format(ca.serial_number, "x")
    assert ec_chain["not_after"] == int(ca.not_valid_after_utc.timestamp())
