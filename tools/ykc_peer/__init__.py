"""YKC (云快充) V1.6 platform peer for testing chargers: its own codec, an asyncio TCP server, an HTTP API."""

from .server import BillingModel, PeerConfig, PeerError, PileState, Record, YkcPeer

__all__ = ["BillingModel", "PeerConfig", "PeerError", "PileState", "Record", "YkcPeer"]
