# proto.ocpp16.tx.sender on the unix port: when the link has just dropped (the station still
# thinks it is online, the RPC layer already has no socket), the sender must yield to the other
# tasks instead of retrying in a loop that never awaits (found by a chaos run: chargers froze).
import asyncio
import mptest
from proto.rpc import NotConnected
from proto.ocpp16 import tx


class Queue:
    def __init__(self):
        self.items = [[1, "MeterValues", {"connectorId": 1, "meterValue": []}, None]]
        self.ids = {}

    def head(self):
        return self.items[0]

    def done(self, seq):
        self.items.pop(0)


class Rpc:
    def __init__(self):
        self.calls = 0

    async def call(self, action, payload, on_result=None):
        self.calls += 1
        raise NotConnected()   # no socket: raised before anything awaits


class Station:
    def __init__(self):
        self.queue = Queue()
        self.registered = True
        self.online = True          # the link task has not run yet to notice the drop
        self.wake_tx = asyncio.Event()
        self.rpc = Rpc()
        self.keys = {"TransactionMessageAttempts": 3, "TransactionMessageRetryInterval": 1}


async def test_sender_yields_while_the_link_is_down():
    st = Station()
    ticks = []

    async def link_task():
        for _ in range(5):
            await asyncio.sleep_ms(20)
            ticks.append(1)
        st.online = False            # what the link task does once it runs

    sender = asyncio.create_task(tx.sender(st))
    await asyncio.wait_for_ms(link_task(), 2000)
    assert len(ticks) == 5
    assert 1 <= st.rpc.calls <= 10, st.rpc.calls   # a few retries, not a spin
    assert st.queue.items                           # nothing dropped: it waits for the link
    sender.cancel()


mptest.run(globals())
