"""CPython tools around the firmware: the OCPP 1.6 CSMS, the YKC peer, benchmarks."""
