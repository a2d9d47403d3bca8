# OCPP 1.6J stack: start(charger, board, cfg) returns the coroutines that run it.


def start(charger, board, cfg):
    from proto.ocpp16 import core, station, tx, meter, auth

    routes = dict(core.ROUTES)
    st = station.Station(charger, board, cfg, routes)
    st.smart = None
    charger.authorizer = lambda tag: auth.authorize(st, tag)
    tx.attach(st)
    return st, [st.link(), st.heartbeat(), st.statuses(), tx.sender(st), meter.sampled(st), meter.aligned(st)]
