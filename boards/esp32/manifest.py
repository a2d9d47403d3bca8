# ESP32 board: the port's own modules, the firmware, and this board's HAL mapping, frozen.
include("$(PORT_DIR)/boards/manifest.py")
include("../../firmware/manifest.py")
module("board.py")
