# Pure-MicroPython cryptography the ssl module lacks: P-256 ECDSA, DER/ASN.1, X.509/PKCS#10, PEM.
