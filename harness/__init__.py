"""evfleet harness: launches and drives fleets of real MicroPython firmware chargers."""
