# Connector statuses and error codes (OCPP 1.6 names; other protocols map them to their own codes).

AVAILABLE = "Available"
PREPARING = "Preparing"
CHARGING = "Charging"
SUSPENDED_EV = "SuspendedEV"
SUSPENDED_EVSE = "SuspendedEVSE"
FINISHING = "Finishing"
RESERVED = "Reserved"
UNAVAILABLE = "Unavailable"
FAULTED = "Faulted"

NO_ERROR = "NoError"

# Every ChargePointErrorCode except NoError; the first group stops energy delivery (status Faulted),
# the second is reported with the status the connector otherwise has.
FATAL = ("ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
         "InternalError", "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
         "PowerSwitchFailure", "UnderVoltage")
WARNING = ("LocalListConflict", "ReaderFailure", "ResetFailure", "WeakSignal")
ERROR_CODES = FATAL + WARNING

# Transaction stop reasons.
REASONS = ("DeAuthorized", "EmergencyStop", "EVDisconnected", "HardReset", "Local", "Other",
           "PowerLoss", "Reboot", "Remote", "SoftReset", "UnlockCommand")


def error_code(name):
    # The canonical spelling of an error code, matched case-insensitively; ValueError if unknown.
    low = name.lower()
    for c in ERROR_CODES:
        if c.lower() == low:
            return c
    raise ValueError("unknown error code %r (one of: %s)" % (name, ", ".join(ERROR_CODES)))
