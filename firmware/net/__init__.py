# Network layer: WebSocket client (OCPP-J), URL parsing, TLS contexts, reconnect back-off.
