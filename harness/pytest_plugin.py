"""pytest plugin: `fleet` and `charger` fixtures for testing a CSMS with real firmware chargers."""
