# PEM (RFC 7468) <-> DER: the ssl module of this port reads DER only, OCPP carries PEM text.
from binascii import a2b_base64, b2a_base64


def blocks(text):
    # [(label, der)] of every "-----BEGIN X-----" ... "-----END X-----" block, in order.
    # ValueError for an unterminated block, mismatched labels or bad base64.
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode()
    out = []
    i = 0
    while True:
        a = text.find("-----BEGIN ", i)
        if a < 0:
            return out
        b = text.find("-----", a + 11)
        if b < 0:
            raise ValueError("bad PEM header")
        label = text[a + 11 : b]
        end = "-----END %s-----" % label
        c = text.find(end, b + 5)
        if c < 0:
            raise ValueError("PEM block %s not terminated" % label)
        body = "".join(text[b + 5 : c].split())
        if not body or len(body) % 4:
            raise ValueError("bad base64 in PEM block %s" % label)
        try:
            der = a2b_base64(body)
        except Exception:
            raise ValueError("bad base64 in PEM block %s" % label)
        out.append((label, der))
        i = c + len(end)


def decode(text, label="CERTIFICATE"):
    # DER of the first block with this label; ValueError if there is none.
    for lab, der in blocks(text):
        if lab == label:
            return der
    raise ValueError("no PEM %s block" % label)


def encode(der, label="CERTIFICATE"):
    b64 = b2a_base64(der).decode().replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)
