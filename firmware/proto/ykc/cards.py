# YKC cards: the charger's authorizer (card start 0x31 -> 0x32 online, the offline-card list when
# the platform is away), the offline-card list operations 0x44/0x46/0x48, and balance updates 0x42.
# Cards are kept in charger.auth's local list under their 16-hex-digit physical number.
import asyncio
from binascii import hexlify
import log

_HEX = "0123456789ABCDEF"


def card_hex(tag):
    # The 8-byte physical card number of an RFID tag: a hex UID right-aligned with zeros (§2);
    # a tag that is not hex (console names) is sent as its first 8 ASCII bytes.
    t = tag.upper()
    if len(t) > 16 or not t or any(ch not in _HEX for ch in t):
        t = hexlify(tag.encode()[:8]).decode().upper()
    return "0" * (16 - len(t)) + t


class Cards:
    def __init__(self, st):
        self.st = st
        st.routes[0x42] = self.balance
        st.routes[0x44] = self.sync
        st.routes[0x46] = self.clear
        st.routes[0x48] = self.query

    def _gun(self, tag):
        # The gun a card is for: where it was presented, else a free plugged gun, else any free one.
        ch = self.st.charger
        cid = getattr(ch, "auth_conn", None)
        if cid:
            return ch.connectors[cid] if ch.can_start(ch.connectors[cid], tag) else None
        free = [c for c in ch.connectors[1:] if ch.can_start(c, tag)]
        for c in free:
            if c.plugged():
                return c
        return free[0] if free else None

    async def authorize(self, tag):
        # charger.authorizer: ("Accepted", None) leaves a pending start with the trade number.
        st = self.st
        c = self._gun(tag)   # read before any await: auth_conn belongs to this card
        if c is None:
            return "Invalid", None
        for _ in range(50):   # logged in, model still on its way (0x05/0x09 follow the login): ≤ 5 s
            if st.billing.ready() or not st.registered:
                break
            await asyncio.sleep_ms(100)
        if not st.billing.ready():
            log.warn("ykc", "no billing model: card %s cannot start" % tag)
            return "Invalid", None
        card = card_hex(tag)
        pend = st.trades.pending
        if st.registered and st.send(0x31, {"pile": st.pile, "gun": c.id, "mode": 1, "pw_required": 0,
                                            "card": card}):
            f = await st.expect(0x32, lambda f: f["gun"] == c.id, st.reply_s)
            if f is not None:
                if f["result"] == 1:
                    pend[c.id] = {"t": f["trade"], "k": 2, "card": card, "lc": f["logical"],
                                  "bal": f["balance"], "tag": tag}
                    return "Accepted", None
                log.info("ykc", "card %s refused by the platform (reason %d)" % (card, f["reason"]))
                return ("Blocked" if f["reason"] == 2 else "Invalid"), None
            log.warn("ykc", "no 0x32 for card %s: checking the offline-card list" % card)
        e = st.charger.auth.listed(card, st.charger.clock.now())
        if e is not None and e[0] == "Accepted":
            pend[c.id] = {"t": None, "k": 4, "card": card, "lc": e[1] or "", "bal": 0, "tag": tag}
            return "Accepted", None
        return "Invalid", None

    def balance(self, seq, f):
        # 0x42 -> 0x41: result 0 ok, 1 pile mismatch, 2 no session of that card (§4.18).
        st = self.st
        res = 1 if f["pile"] != st.pile else 2
        if res == 2:
            s = st.trades.sess.get(f["gun"])
            if s is not None and s["card"] == f["card"]:
                s["bal"] = f["balance"]
                res = 0
                log.info("ykc", "gun %d balance now %d x0.01 yuan" % (f["gun"], f["balance"]))
        st.send(0x41, {"pile": st.pile, "card": f["card"], "result": res}, seq)

    def sync(self, seq, f):
        # 0x44 -> 0x43: add (logical, physical) pairs to the offline-card list.
        auth = self.st.charger.auth
        ok = auth.update_list(auth.list_version() + 1,
                              [(phys, ["Accepted", None, logical]) for logical, phys in f["cards"]], False)
        self.st.send(0x43, {"pile": self.st.pile, "result": 1 if ok else 0, "reason": 0 if ok else 2}, seq)

    def clear(self, seq, f):
        # 0x46 -> 0x45: per card (physical, cleared 1/0, reason 1 = not in the list).
        auth = self.st.charger.auth
        now = self.st.charger.clock.now()
        out = [(p, 1, 0) if auth.listed(p, now) is not None else (p, 0, 1) for p in f["cards"]]
        auth.update_list(auth.list_version() + 1, [(p, None) for p in f["cards"]], False)
        self.st.send(0x45, {"pile": self.st.pile, "cards": out}, seq)

    def query(self, seq, f):
        # 0x48 -> 0x47: per card (physical, exists 1/0).
        auth = self.st.charger.auth
        now = self.st.charger.clock.now()
        out = [(p, 0 if auth.listed(p, now) is None else 1) for p in f["cards"]]
        self.st.send(0x47, {"pile": self.st.pile, "cards": out}, seq)
