# The charger firmware for MicroPython's manifest system (freezing into an image); boards include it.
metadata(description="evfleet EV charger firmware: model, HAL, OCPP 1.6J and YKC stacks, console", version="1.0.0")

module("app.py")
module("log.py")
module("bus.py")
module("timedevent.py")
package("charger")
package("hal")
package("net")
package("store")
package("console")
package("proto")
package("crypto")
