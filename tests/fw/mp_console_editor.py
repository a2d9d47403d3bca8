# Tests for console/editor.py: echo, backspace, Ctrl-C, CR/LF, escape sequences, machine lines.
import mptest
from console.editor import Editor, LINE, RECORD, JSON, TOO_LONG, CTRL_A, CTRL_B, CTRL_C, CTRL_D
from console.editor import HUMAN_MAX, MACHINE_MAX


def feed(ed, data):
    # Every non-None result, with the line for line kinds.
    got = []
    for c in data:
        r = ed.feed(c)
        if r in (LINE, RECORD, JSON):
            got.append((r, ed.line))
        elif r:
            got.append(r)
    return got


def test_echo_and_line():
    ed = Editor(b"> ")
    assert feed(ed, b"plug 1\r") == [(LINE, b"plug 1")]
    assert ed.take() == b"plug 1\r\n"
    assert ed.take() == b""


def test_crlf_is_one_line_end_and_lf_alone_works():
    ed = Editor()
    assert feed(ed, b"a\r\nb\nc\r\r") == [(LINE, b"a"), (LINE, b"b"), (LINE, b"c"), (LINE, b"")]


def test_backspace_removes_whole_utf8_char():
    ed = Editor()
    ed.echo = False
    assert feed(ed, "aé\x7f\x08x\r".encode()) == [(LINE, b"x")]
    ed.echo = True
    feed(ed, b"ab\x08")
    assert ed.take() == b"ab\b \b"
    feed(ed, b"\x08\x08")  # backspace on an empty line echoes nothing
    assert ed.take() == b"\b \b"


def test_ctrl_c_clears_line():
    ed = Editor()
    assert feed(ed, b"garbage\x03ok\r") == [CTRL_C, (LINE, b"ok")]
    assert ed.take() == b"garbage^C\r\nok\r\n"


def test_control_codes():
    ed = Editor()
    assert feed(ed, b"\x01\x02\x04") == [CTRL_A, CTRL_B, CTRL_D]
    assert feed(ed, b"x\x04\x03") == [CTRL_C]  # Ctrl-D only counts on an empty line
    assert feed(ed, b"\t\x07y\r") == [(LINE, b"y")]  # other control bytes are ignored


def test_escape_sequences_are_skipped():
    ed = Editor()
    assert feed(ed, b"a\x1b[A\x1b[1;5Cb\x1bOPc\r") == [(LINE, b"abc")]
    assert feed(ed, b"\x1b[\x03") == [CTRL_C]  # a control byte ends a sequence and counts


def test_record_line_not_echoed_and_human_line_kept():
    ed = Editor()
    got = feed(ed, b'pl\x1e{"id":1,"cmd":"x"}\r\nug\r')
    assert got == [(RECORD, b'{"id":1,"cmd":"x"}'), (LINE, b"plug")]
    assert ed.take() == b"plug\r\n"


def test_json_line_when_brace_first():
    ed = Editor()
    assert feed(ed, b'{"cmd":"help"}\n') == [(JSON, b'{"cmd":"help"}')]
    assert ed.take() == b""
    assert feed(ed, b'say {x}\r') == [(LINE, b"say {x}")]


def test_human_line_too_long():
    ed = Editor()
    ed.echo = False
    assert feed(ed, b"a" * (HUMAN_MAX + 100) + b"\r") == [TOO_LONG]
    assert ed.kind == LINE
    assert feed(ed, b"ok\r") == [(LINE, b"ok")]


def test_machine_line_too_long_and_ctrl_c_abandons():
    ed = Editor()
    assert feed(ed, b"\x1e" + b"x" * (MACHINE_MAX + 10) + b"\n") == [TOO_LONG]
    assert ed.kind == RECORD
    assert feed(ed, b'\x1e{"id"\x03ok\r') == [CTRL_C, (LINE, b"ok")]


def test_echo_off_no_prompt():
    ed = Editor(b"> ")
    ed.show_prompt()
    assert ed.take() == b"> " and ed.shown
    assert ed.erase() == b"\r\x1b[K" and not ed.shown
    ed.echo = False
    feed(ed, b"abc")
    ed.show_prompt()
    assert ed.take() == b"" and not ed.shown


def test_prompt_redraw_keeps_typed_text():
    ed = Editor(b"> ")
    feed(ed, b"plu")
    ed.take()
    ed.show_prompt()
    assert ed.take() == b"> plu"


mptest.run(globals())
