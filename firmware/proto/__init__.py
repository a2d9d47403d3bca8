# Protocol stacks (ocpp16, ykc), each behind the same start(charger, board, settings) entry point.
