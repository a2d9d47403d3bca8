# Tests for console/commands.py: registry, argument helpers, human line splitting, result text.
import mptest
import log
from console import commands
from console.commands import command, CommandError, arg_int, arg_str
from console.commands import arg_float, arg_bool, arg_choice


@command("t_plug", "t_plug <conn>", "plug a cable")
def _plug(args):
    return {"conn": arg_int(args, 0, "conn")}


def raises(fn, *a):
    try:
        fn(*a)
    except CommandError as e:
        return str(e)
    raise AssertionError("no CommandError")


def test_register_and_call():
    assert commands.call("t_plug", ["2"]) == {"conn": 2}
    assert commands.call("t_plug", [3]) == {"conn": 3}
    assert commands.get("t_plug")[1:] == ("t_plug <conn>", "plug a cable")
    assert "t_plug" in commands.names() and "help" in commands.names()
    assert raises(commands.call, "nope", []) == "unknown command 'nope' (try help)"


def test_arg_int():
    assert raises(arg_int, [], 0, "conn") == "missing <conn>"
    assert raises(arg_int, ["x"], 0, "conn") == "<conn> must be an integer"
    assert raises(arg_int, [True], 0, "conn") == "<conn> must be an integer"
    assert raises(arg_int, [1.5], 0, "conn") == "<conn> must be an integer"
    assert arg_int([], 0, "conn", 1) == 1
    assert arg_int([None], 0, "conn", None) is None
    assert arg_int(["-4"], 0, "n") == -4


def test_other_args():
    assert arg_str([12], 0, "tag") == "12"
    assert raises(arg_str, [[1]], 0, "tag") == "<tag> must be a string"
    assert arg_float(["1.5"], 0, "a") == 1.5
    assert raises(arg_float, ["x"], 0, "a") == "<a> must be a number"
    assert arg_bool(["on"], 0, "b") is True and arg_bool([False], 0, "b") is False
    assert raises(arg_bool, ["maybe"], 0, "b") == "<b> must be on or off"
    assert arg_choice(["A"], 0, "s", ("A", "B")) == "A"
    assert raises(arg_choice, ["C"], 0, "s", ("A", "B")) == "<s> must be one of: A, B"


def test_split():
    sp = commands.split
    assert sp("  plug   1 ") == ["plug", "1"]
    assert sp('say "hello world" x') == ["say", "hello world", "x"]
    assert sp("say 'a \"b\"' c") == ["say", 'a "b"', "c"]
    assert sp('say "a\\"b" ""') == ["say", 'a"b', ""]
    assert sp('tag=ab"c d"e') == ["tag=abc de"]
    assert sp("") == []
    assert raises(sp, 'say "oops') == "unterminated quote"


def test_format_result():
    f = commands.format_result
    assert f(None) == ""
    assert f("hi\nthere") == "hi\nthere"
    assert f(5) == "5"
    assert f(True) == "true"
    assert f({"b": 2, "a": "x", "c": [1, 2]}) == "a: x\nb: 2\nc: [1,2]"
    assert f(["x", {"k": 1}]) == 'x\n{"k":1}'


def test_builtin_help_and_log():
    h = commands.call("help", [])
    assert "t_plug <conn>" in h and "plug a cable" in h
    assert commands.call("help", ["t_plug"]) == "usage: t_plug <conn>\n  plug a cable"
    assert raises(commands.call, "help", ["zz"]) == "unknown command 'zz' (try help)"
    old = log.level
    assert commands.call("log", ["debug"]) == {"level": "debug"} and log.level == log.DEBUG
    assert "unknown log level" in raises(commands.call, "log", ["loud"])
    assert log.level == log.DEBUG  # a bad level changes nothing
    log.level = old
    m = commands.call("mem", [])
    assert m["free"] > 0 and m["alloc"] > 0


mptest.run(globals())
