# Builds client SSLContexts from DER certificates/keys: server verification and optional mutual TLS.
import ssl

# This port's mbedtls build cannot parse PEM ("invalid cert"); failing early names the real cause.
_PEM = b"-----BEGIN"


def _load(x, what):
    if isinstance(x, str):
        with open(x, "rb") as f:
            x = f.read()
    elif not isinstance(x, (bytes, bytearray)):
        raise ValueError("%s: need DER bytes or a file path" % what)
    if x[:10] == _PEM:
        raise ValueError("%s: PEM not supported, convert to DER" % what)
    if not x:
        raise ValueError("%s: empty" % what)
    return x


# ca/cert/key are DER bytes or paths to DER files. A CA turns on CERT_REQUIRED; without one the
# caller must say insecure=True: MicroPython's default (CERT_NONE) would silently trust anyone.
def context(ca=None, cert=None, key=None, insecure=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=_load(ca, "ca"))
    elif insecure:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        raise ValueError("no CA given: pass insecure=True to skip server verification")
    if (cert is None) != (key is None):
        raise ValueError("client cert and key go together")
    if cert is not None:
        ctx.load_cert_chain(_load(cert, "cert"), _load(key, "key"))
    return ctx
