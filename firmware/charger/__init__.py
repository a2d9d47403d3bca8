# The charger model: connectors, sessions and authorization, independent of board and protocol.
