# The console task: reads the console byte stream, routes it to the line editor, the machine
# requests or the raw REPL, answers commands, and fans events and log lines out to subscribers.
import asyncio
import time
import log
from console import commands, records
from console.commands import command, CommandError, arg_choice
from console.editor import Editor, LINE, RECORD, JSON, TOO_LONG, CTRL_A, CTRL_B, CTRL_C, CTRL_D
from console.editor import HUMAN_MAX, MACHINE_MAX
from console.io import ConsoleIO, crlf
from console.records import HUMAN, HARNESS, PLAIN

# Globals of code run through mpremote (exec/eval); the app puts its objects here ("charger", ...).
repl_globals = {"__name__": "__main__"}
# Raw mode with no input for this long goes back to friendly mode (the host vanished), so that
# held-back output resumes. A module variable, not const(): tests shorten it.
idle_ms = 30000

_con = None  # the running console


def emit_event(kind, data=None):
    # Send an event record {"ev": kind, ...data} to every channel subscribed with `events on`.
    if _con is not None:
        _con.event(kind, data)


def current_channel():
    # Channel (records.HUMAN/HARNESS/PLAIN) of the command being dispatched; valid in its sync part.
    return _con.cur if _con is not None else HUMAN


async def run(banner="", prompt="evse> "):
    # The console task; runs until cancelled. Installs the log sink for its lifetime.
    global _con
    c = _con = _Console(banner, prompt)
    # On ESP32 the board calls micropython.kbd_intr(-1) so that 0x03 arrives here as a byte instead
    # of raising KeyboardInterrupt in whatever runs. Never on unix: there it makes SIGINT fatal.
    log.set_sink(c.log_line)
    try:
        await c.loop()
    finally:
        log.set_sink(None)
        _con = None


class _Console:
    def __init__(self, banner, prompt):
        self.io = ConsoleIO()
        self.ed = Editor(prompt.encode())
        self.banner = banner
        # Events (and log lines) per channel; a person at a terminal wants to see them.
        self.subs = [True, False, False]
        self.cur = HUMAN
        self.raw = None  # the RawRepl while raw mode is active
        self.last_rx = time.ticks_ms()
        self.busy = False  # a human command is running: output it makes is not followed by a prompt
        self.human_task = None  # a running async human command (Ctrl-C cancels it)
        self._in_sink = False

    async def loop(self):
        io = self.io
        ed = self.ed
        self.say(self.banner)
        while True:
            try:
                chunk = await io.read()
            except OSError:
                chunk = b""
            if not chunk:
                # End of input (socket closed, pty without a slave): nobody to talk to; keep the
                # charger running and look again later.
                await asyncio.sleep_ms(1000)
                continue
            self.last_rx = time.ticks_ms()
            if chunk[0] == 0x1F and len(chunk) > 1 and self.raw is None:
                try:
                    self.request(HARNESS, bytes(chunk[1:]))
                except Exception as e:
                    log.exc("console", e, "frame")
                continue
            i = 0
            n = len(chunk)
            while i < n:
                if self.raw is not None:
                    try:
                        i = self.raw.feed(chunk, i)
                    except Exception as e:
                        self.raw.done = True
                        i = n
                        log.exc("console", e, "raw REPL")
                    if self.raw.done:
                        self.leave_raw()
                    continue
                r = ed.feed(chunk[i])
                i += 1
                if r:
                    self.flush_echo()
                    try:
                        self.handle(r)
                    except Exception as e:  # the console must outlive any bug behind it
                        log.exc("console", e, "input")
            self.flush_echo()

    def flush_echo(self):
        b = self.ed.take()
        if b:
            self.io.write(b)

    # ---- input routing

    def handle(self, r):
        ed = self.ed
        if r == LINE:
            self.human(ed.line)
        elif r == RECORD:
            self.request(HARNESS, ed.line)
        elif r == JSON:
            self.request(PLAIN, ed.line)
        elif r == TOO_LONG:
            if ed.kind == LINE:
                self.say("error: line too long (max %d bytes)" % HUMAN_MAX)
            else:
                ch = HARNESS if ed.kind == RECORD else PLAIN
                self.answer(ch, None, False, "line too long (max %d bytes)" % MACHINE_MAX)
        elif r == CTRL_A:
            self.enter_raw()
        elif r == CTRL_B:
            self.say(self.banner)
        elif r == CTRL_C:
            t = self.human_task
            if t is not None:
                self.human_task = None
                t.cancel()
            self.say("")
        elif r == CTRL_D:
            self.say("no soft reboot here: the charger keeps running")

    def human(self, line):
        try:
            words = commands.split(line.decode())
        except UnicodeError:
            self.say("error: line is not UTF-8")
            return
        except CommandError as e:
            self.say("error: %s" % e)
            return
        if not words:
            self.say("")
            return
        self.call(HUMAN, None, words[0], words[1:])

    def request(self, ch, text):
        rid, cmd, args, err = records.parse_request(text)
        if err:
            self.answer(ch, rid, False, err)
        else:
            self.call(ch, rid, cmd, args)

    def call(self, ch, rid, name, args):
        # Run a command; never lets an exception out (except SystemExit: a deliberate restart).
        # Output it makes on the human channel (log lines, events) comes without a prompt; the
        # prompt follows the answer.
        self.cur = ch
        self.busy = ch == HUMAN
        ok = False
        try:
            r = commands.call(name, args)
            ok = True
        except CommandError as e:
            r = str(e)
        except (Exception, KeyboardInterrupt) as e:
            r = self.failed(name, e)
        finally:
            self.cur = HUMAN
            self.busy = False
        if ok and hasattr(r, "send"):  # a coroutine: its own task, the answer when it is done
            t = asyncio.create_task(self.finish(ch, rid, name, r))
            if ch == HUMAN:
                self.human_task = t
            return
        self.answer(ch, rid, ok, r)

    async def finish(self, ch, rid, name, coro):
        try:
            r = await coro
        except CommandError as e:
            self.answer(ch, rid, False, str(e))
            return
        except asyncio.CancelledError:
            self.answer(ch, rid, False, "cancelled")
            return
        except Exception as e:
            self.answer(ch, rid, False, self.failed(name, e))
            return
        finally:
            if self.human_task is asyncio.current_task():
                self.human_task = None
        self.answer(ch, rid, True, r)

    def failed(self, name, e):
        # An unexpected exception in a command: logged, and its text for the error answer.
        log.exc("console", e, name)
        return "%s: %s" % (type(e).__name__, e)

    def answer(self, ch, rid, ok, value):
        if ch == HUMAN:
            if ok:
                try:
                    text = commands.format_result(value)
                except Exception as e:  # a result we cannot show must not kill the console
                    text = "error: result not printable: %s" % e
            else:
                text = "error: %s" % value
            self.say(text)
        else:
            self.io.write(records.frame(ch, records.reply(rid, ok, value)))

    # ---- output

    def say(self, text):
        # Human text above the prompt line, then the prompt with whatever was typed so far.
        self.io.write(self._human(text) + self.ed.take())

    def _human(self, text):
        ed = self.ed
        out = ed.erase()
        if text:
            out += crlf(text)
        if not self.busy:
            ed.show_prompt()
        return out

    def event(self, kind, data):
        subs = self.subs
        if not (subs[0] or subs[1] or subs[2]):
            return
        human = None
        if subs[HUMAN]:
            rec = records.event(kind, data)
            human = "* %s %s" % (kind, " ".join("%s=%s" % (k, commands.value_text(rec[k])) for k in sorted(rec) if k != "ev"))
        # Machine channels: model events are plain JSON data already, so the record text is
        # built directly (this runs for every status change of every charger in a fleet).
        self._fan(human, records.event_text(kind, data) if (subs[1] or subs[2]) else None)

    def log_line(self, lvl, tag, msg):
        # The log sink: text for the human channel, {"ev":"log"} records for machine channels.
        if self._in_sink:
            return  # a log call from inside this sink (an encoding error...) would recurse
        self._in_sink = True
        try:
            name = log.NAMES.get(lvl, str(lvl))
            human = "%s %s: %s" % (name[0].upper(), tag, msg) if self.subs[HUMAN] else None
            rec = records.log_text(name, tag, msg) if (self.subs[1] or self.subs[2]) else None
            self._fan(human, rec)
        finally:
            self._in_sink = False

    def _fan(self, human, rec):
        # One write: human text (with the prompt line redrawn) plus one record per machine channel.
        # rec is the record's JSON text (bytes).
        out = self._human(human) + self.ed.take() if human is not None else b""
        if rec is not None:
            if self.subs[HARNESS]:
                out += b"\x1e" + rec + b"\r\n"
            if self.subs[PLAIN]:
                out += rec + b"\r\n"
        if out:
            self.io.write(out)

    # ---- raw REPL (mpremote)

    def enter_raw(self):
        from console.repl import RawRepl

        self.io.hold = True  # from now on app output waits; only the REPL writes
        self.raw = RawRepl(self.io.put, repl_globals)
        self.raw.enter()
        asyncio.create_task(self._watch_raw(self.raw))

    def leave_raw(self, why=None):
        self.raw = None
        self.ed.shown = False
        self.io.release()
        self.say(why)

    async def _watch_raw(self, repl):
        # Leave raw mode after idle_ms without input; ends when that raw session ends.
        while self.raw is repl:
            await asyncio.sleep_ms(min(idle_ms, 1000))
            if self.raw is repl and time.ticks_diff(time.ticks_ms(), self.last_rx) >= idle_ms:
                self.leave_raw("\nraw REPL idle for %d s: back to the console" % (idle_ms // 1000))
                return


# ---- built-ins that act on the console itself


@command("events", "events [on|off] [human|harness|json]", "event and log records for this channel")
def _events(args):
    c = _con
    ch = c.cur
    if len(args) > 1:
        ch = records.NAMES.index(arg_choice(args, 1, "channel", records.NAMES))
    if args:
        c.subs[ch] = arg_choice(args, 0, "on|off", ("on", "off")) == "on"
    return {"events": "on" if c.subs[ch] else "off", "channel": records.NAMES[ch]}


@command("frames", "frames [on|off]", "length-prefixed requests (the harness's fast path)")
def _frames(args):
    if args:
        _con.io.frames = arg_choice(args, 0, "on|off", ("on", "off")) == "on"
    return {"frames": "on" if _con.io.frames else "off"}


@command("echo", "echo [on|off]", "echo and prompt of typed lines (off for programs)")
def _echo(args):
    ed = _con.ed
    if args:
        ed.echo = arg_choice(args, 0, "on|off", ("on", "off")) == "on"
        if not ed.echo:
            ed.shown = False
    return {"echo": "on" if ed.echo else "off"}
