# OCPP 1.6 configuration keys: type, read-only rule, default; values persisted in /ocpp16.json.
# Values are typed here and rendered as the strings GetConfiguration carries.
from micropython import const
import log
import store.kv as kv

_PATH = "/ocpp16.json"
RO = const(1)        # read-only for the back-end
HIDDEN = const(2)    # write-only (never reported), e.g. AuthorizationKey
REBOOT = const(4)    # a change takes effect after a reboot
MEASURANDS = const(8)

SUPPORTED_MEASURANDS = ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
                        "Voltage", "SoC", "Temperature", "Current.Offered", "Power.Offered")

# name: (type, default, flags); type b bool, i int >= 0, s string, l comma-separated list.
CORE = {
    "AllowOfflineTxForUnknownId": ("b", False, 0),
    "AuthorizationCacheEnabled": ("b", True, 0),
    "AuthorizeRemoteTxRequests": ("b", True, 0),
    "BlinkRepeat": ("i", 3, 0),
    "ClockAlignedDataInterval": ("i", 0, 0),
    "ConnectionTimeOut": ("i", 60, 0),
    "ConnectorPhaseRotation": ("l", "0.RST", 0),
    "ConnectorPhaseRotationMaxLength": ("i", 5, RO),
    "GetConfigurationMaxKeys": ("i", 64, RO),
    "HeartbeatInterval": ("i", 300, 0),
    "LightIntensity": ("i", 100, 0),
    "LocalAuthorizeOffline": ("b", True, 0),
    "LocalPreAuthorize": ("b", False, 0),
    "MaxEnergyOnInvalidId": ("i", 0, 0),
    "MeterValuesAlignedData": ("l", "Energy.Active.Import.Register", MEASURANDS),
    "MeterValuesAlignedDataMaxLength": ("i", 8, RO),
    "MeterValuesSampledData": ("l", "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC", MEASURANDS),
    "MeterValuesSampledDataMaxLength": ("i", 8, RO),
    "MeterValueSampleInterval": ("i", 60, 0),
    "MinimumStatusDuration": ("i", 0, 0),
    "NumberOfConnectors": ("i", 1, RO),
    "ResetRetries": ("i", 1, 0),
    "StopTransactionOnEVSideDisconnect": ("b", True, 0),
    "StopTransactionOnInvalidId": ("b", True, 0),
    "StopTxnAlignedData": ("l", "", MEASURANDS),
    "StopTxnAlignedDataMaxLength": ("i", 8, RO),
    "StopTxnSampledData": ("l", "Energy.Active.Import.Register", MEASURANDS),
    "StopTxnSampledDataMaxLength": ("i", 8, RO),
    "SupportedFeatureProfiles": ("l", "Core", RO),
    "SupportedFeatureProfilesMaxLength": ("i", 6, RO),
    "TransactionMessageAttempts": ("i", 3, 0),
    "TransactionMessageRetryInterval": ("i", 10, 0),
    "UnlockConnectorOnEVSideDisconnect": ("b", True, 0),
    "WebSocketPingInterval": ("i", 60, 0),
    "AuthorizationKey": ("s", "", HIDDEN),
}


class Keys:
    def __init__(self, table, overrides=None):
        self.table = table
        self.values = {}
        for name, (t, default, flags) in table.items():
            self.values[name] = default
        # Instance overrides from /config.json act as this charger's factory settings.
        for name, v in (overrides or {}).items():
            if name not in table:
                log.warn("keys", "config override of unknown key %s ignored" % name)
                continue
            try:
                self.values[name] = self._parse(name, v if isinstance(v, str) else _render(v))
            except ValueError as e:
                log.warn("keys", "config override %s ignored: %s" % (name, e))
        saved = kv.load(_PATH, {}) or {}
        for name, v in saved.items():
            if name in table and not table[name][2] & RO:
                self.values[name] = v
        self._saved = saved   # for the feature profiles' keys (add): one read of the file per boot
        self.on_change = None   # fn(name, value) after an accepted change

    def add(self, more):
        # A feature profile brings its own keys.
        for name, (t, default, flags) in more.items():
            self.table[name] = (t, default, flags)
            self.values.setdefault(name, default)
        saved = self._saved
        if saved is None:
            saved = self._saved = kv.load(_PATH, {}) or {}
        for name in more:
            if name in saved and not more[name][2] & RO:
                self.values[name] = saved[name]

    def __getitem__(self, name):
        return self.values[name]

    def get(self, name, default=None):
        return self.values.get(name, default)

    def force(self, name, value):
        # Set a key from the firmware itself (boot interval, read-only facts); persisted if writable.
        if name in self.values and self.values[name] == value:
            return   # the same interval at every boot: no rewrite of the file
        self.values[name] = value
        if not self.table[name][2] & RO:
            self._save()

    def measurands(self, name):
        v = self.values[name]
        return [m for m in v.split(",") if m] if v else []

    def _parse(self, name, text):
        t, default, flags = self.table[name]
        if t == "b":
            low = text.strip().lower()
            if low not in ("true", "false"):
                raise ValueError("expects true or false")
            return low == "true"
        if t == "i":
            try:
                v = int(text.strip())
            except ValueError:
                raise ValueError("expects an integer")
            if v < 0:
                raise ValueError("must not be negative")
            return v
        if t == "l" and flags & MEASURANDS:
            items = [m.strip() for m in text.split(",") if m.strip()]
            limit = self.values.get(name + "MaxLength")
            if limit is not None and len(items) > limit:
                raise ValueError("more than %d measurands" % limit)
            for m in items:
                if m not in SUPPORTED_MEASURANDS:
                    raise ValueError("measurand %s not supported" % m)
            return ",".join(items)
        return text

    def change(self, name, text):
        # ChangeConfiguration: "Accepted", "Rejected", "RebootRequired" or "NotSupported".
        spec = self.table.get(name)
        if spec is None:
            return "NotSupported"
        if spec[2] & RO:
            return "Rejected"
        try:
            value = self._parse(name, text)
        except ValueError as e:
            log.warn("keys", "%s=%r rejected: %s" % (name, text, e))
            return "Rejected"
        self.values[name] = value
        self._save()
        if self.on_change is not None:
            self.on_change(name, value)
        return "RebootRequired" if spec[2] & REBOOT else "Accepted"

    def report(self, names=None):
        # GetConfiguration: (configurationKey list, unknownKey list).
        known = []
        unknown = []
        for name in names if names else self.table:
            spec = self.table.get(name)
            if spec is None or (spec[2] & HIDDEN):
                unknown.append(name)
                continue
            known.append({"key": name, "readonly": bool(spec[2] & RO), "value": _render(self.values[name])})
        return known, unknown

    def _save(self):
        self._saved = None
        kv.save(_PATH, {n: v for n, v in self.values.items() if not self.table[n][2] & RO})


def _render(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)
