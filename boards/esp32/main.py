# ESP32 entry point (/main.py on the device): an installed update (/app) wins over the firmware in
# /lib or frozen in the image, then the firmware's entry module starts the charger.
import sys

sys.path.insert(1, "/app")
import app  # noqa: E402

app.start()
