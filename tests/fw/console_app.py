# Test application for the console (tests/fw/test_console.py): a 10 ms ticker that records its worst
# scheduling gap, a few demo commands, optional periodic log lines, and the console task.
import sys
import asyncio
import time
import log
from console import console
from console.commands import command, CommandError, arg_int, arg_str

state = {"max_gap": 0, "ticks": 0, "chatter": 0, "n": 0}


async def ticker():
    last = time.ticks_ms()
    while True:
        await asyncio.sleep_ms(10)
        now = time.ticks_ms()
        gap = time.ticks_diff(now, last)
        last = now
        state["ticks"] += 1
        if gap > state["max_gap"]:
            state["max_gap"] = gap


async def chatter():
    # A log line every state["chatter"] ms (0: quiet), to see lines held back during raw mode.
    while True:
        ms = state["chatter"]
        if ms:
            state["n"] += 1
            log.info("app", "chatter %d" % state["n"])
        await asyncio.sleep_ms(ms or 100)


@command("gap", "gap [reset]", "worst ticker gap in ms since start or the last reset")
def _gap(args):
    g = {"max_gap_ms": state["max_gap"], "ticks": state["ticks"]}
    if args and arg_str(args, 0, "reset") == "reset":
        state["max_gap"] = 0
    return g


@command("add", "add <a> <b>", "add two integers")
def _add(args):
    return arg_int(args, 0, "a") + arg_int(args, 1, "b")


@command("echoargs", "echoargs <word>...", "the arguments as received")
def _echoargs(args):
    return list(args)


@command("boom", "boom", "raise an unexpected exception")
def _boom(args):
    return 1 // 0


@command("slow", "slow <ms>", "answer after <ms> milliseconds (async command)")
def _slow(args):
    ms = arg_int(args, 0, "ms")

    async def later():
        await asyncio.sleep_ms(ms)
        return {"slept_ms": ms}

    return later()


@command("emit", "emit <kind> [<conn>]", "send an event record to subscribed channels")
def _emit(args):
    data = {"conn": arg_int(args, 1, "conn", 1), "status": "Charging"}
    console.emit_event(arg_str(args, 0, "kind"), data)


@command("say", "say <text>", "log a line at info level")
def _say(args):
    log.info("app", " ".join(args))


@command("chatter", "chatter <ms>", "log a line every <ms> ms (0: stop)")
def _chatter(args):
    state["chatter"] = arg_int(args, 0, "ms")


async def main():
    if len(sys.argv) > 1:
        console.idle_ms = int(sys.argv[1])
    console.repl_globals["state"] = state
    asyncio.create_task(ticker())
    asyncio.create_task(chatter())
    await console.run(banner="console test app", prompt="evse> ")


asyncio.run(main())
