# OCPP 1.6J stack: start(charger, board, cfg) returns the stack's handle and the coroutines that
# run it. Beyond Core, each feature profile is a module with install(st) that registers its routes
# (st.rpc.routes), configuration keys (st.add_feature) and tasks; cfg["ocpp_features"] picks them.

FEATURES = ("smart", "reservation", "locallist", "trigger", "firmware", "security")   # feature modules installed by default, in this order

# What start() imports, for a launcher that loads the firmware once before forking chargers; with
# seclink, which security loads on demand and drops again (7 loads from flash at every boot), but
# which stays once it is part of the loaded image (security.release()).
PRELOAD = tuple("proto.ocpp16." + m for m in ("core", "station", "tx", "meter", "auth") + FEATURES + ("seclink",))


def start(charger, board, cfg):
    from proto.ocpp16 import core, station, tx, meter, auth

    routes = dict(core.ROUTES)
    st = station.Station(charger, board, cfg, routes)
    charger.authorizer = lambda tag: auth.authorize(st, tag)
    tx.attach(st)
    # Callables, not coroutines: main restarts a task that crashed (a watchdog for each loop).
    tasks = [st.link, st.heartbeat, st.statuses, lambda: tx.sender(st), lambda: meter.sampled(st),
             lambda: meter.aligned(st)]
    for name in cfg.get("ocpp_features", FEATURES):
        mod = __import__("proto.ocpp16." + name, None, None, ("install",))
        tasks += mod.install(st) or []
    return st, tasks
