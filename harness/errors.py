"""The one exception type of the control API."""


class FleetError(Exception):
    """A control request that cannot be done (unknown charger, bad argument, timeout...)."""
