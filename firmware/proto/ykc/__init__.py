# YKC (云快充) V1.5/V1.6 TCP binary protocol: codec, frame bodies and (later) the charger session.
