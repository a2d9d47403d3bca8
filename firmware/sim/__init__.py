# Emulated hardware behind the HAL: the EV on the other end of the cable and the energy meter.
