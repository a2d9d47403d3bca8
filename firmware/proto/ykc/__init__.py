# YKC (云快充) V1.5/V1.6 TCP binary protocol stack: start(charger, board, cfg) -> (handle, coroutines).
#
# Settings read from cfg (the instance's /config.json); defaults in brackets:
#   ykc_host, ykc_port        platform address [127.0.0.1, 8767]; or csms_url "tcp://host:port"
#   pile_code                 14 digits; absent: a stable number derived from the charger id
#   type, connectors          AC/DC (pile type in 0x01, BMS frames for DC); guns = connectors
#   reconnect_base_ms, reconnect_cap_ms, connect_timeout_ms   link back-off [1000, 60000, 10000]
#   crc_high_first            send the CRC high byte first (field quirk) [false]
#   ykc_version 15|16 [16], ykc_net [1 LAN], ykc_operator [4 other]: login fields
#   ykc_tz_min                minutes east of UTC of the platform's local time [480, China]
#   ykc_heartbeat_s [10], ykc_heartbeat_misses [3]: link dead after that many unanswered rounds
#   ykc_login_retry_s [60], ykc_reply_timeout_s [10] (0x32), ykc_check_retry_s [15] (0x05),
#   ykc_model_retry_s [30] (0x09)
#   ykc_order "pdf" | "model_first" [pdf]: records then 0x05 after login, or 0x09 at once and
#                             records once the model is there; ykc_skip_check: 0x09 without 0x05
#   ykc_realtime_s [15] / ykc_idle_s [300]: 0x13 (and DC 0x23/0x25) period charging / idle
#   ykc_record_retry_s [30], ykc_record_retries [3], ykc_record_limit [200]: 0x3B resending
#   ykc_plug_timeout_s [60]   a remote start waits that long for the cable
#   ykc_balance_stop [true]   end a session when its amount reaches the account balance
#   ykc_dc_stop_full [true]   end a DC session when the EV's BMS reports it is full
# Files on flash: /ykc/billing.json, /ykc/s<gun>.json (running sessions), /ykc/rec.log (records),
# /ykc/params.json (max power).


def start(charger, board, cfg):
    from proto.ykc import station, trade, records, realtime, cards, admin

    st = station.Station(charger, board, cfg)
    st.records = records.Records(st, cfg)
    st.trades = trade.Trades(st, cfg)
    st.rt = realtime.Realtime(st, cfg)
    charger.authorizer = cards.Cards(st).authorize
    admin.attach(st)
    # Callables, not coroutines: main restarts a loop that crashed.
    return st, [st.link, st.rt.run, st.records.run]
