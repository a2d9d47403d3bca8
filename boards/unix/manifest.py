# Unix (emulator) board: the firmware plus the emulated EV and meter and the PinBase board.
include("../../firmware/manifest.py")
package("sim", base_path="../../firmware")
module("board.py")
