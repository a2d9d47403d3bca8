# One energy-meter reading: what a real meter's registers give (energy as int Wh, see ESP32 floats).


class Reading:
    def __init__(self, energy_wh=0, power_w=0.0, current_a=0.0, voltage_v=230.0, soc=None, temp_c=25.0, phases=1):
        self.energy_wh = energy_wh
        self.power_w = power_w
        self.current_a = current_a
        self.voltage_v = voltage_v
        self.soc = soc
        self.temp_c = temp_c
        self.phases = phases
