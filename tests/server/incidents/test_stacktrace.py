"""Python tracebacks as logs carry them, read into frames: real ones, made by the interpreter."""

from __future__ import annotations

import traceback

from canopy.server.incidents.stacktrace import parse_traceback


def recurse(depth: int) -> None:
    if depth == 0:
        raise ValueError("bottom reached\nsecond line")
    recurse(depth - 1)


def formatted(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def test_the_last_exception_of_a_chain_is_read_with_its_frames() -> None:
    try:
        try:
            recurse(2)
        except ValueError as inner:
            raise KeyError("outer") from inner
    except KeyError as error:
        text = formatted(error)
    assert "direct cause" in text
    parsed = parse_traceback(text)
    assert parsed is not None
    assert (parsed.exception_type, parsed.message) == ("KeyError", "'outer'")
    [frame] = parsed.frames
    assert (frame.function, frame.in_app, frame.file) == (
        "test_the_last_exception_of_a_chain_is_read_with_its_frames",
        True,
        __file__,
    )
    assert frame.context_line == 'raise KeyError("outer") from inner'


def test_recursion_carets_and_multi_line_messages() -> None:
    try:
        recurse(3)
    except ValueError as error:
        parsed = parse_traceback(formatted(error))
    assert parsed is not None
    assert [f.function for f in parsed.frames] == [
        "test_recursion_carets_and_multi_line_messages"
    ] + ["recurse"] * 4
    assert (parsed.exception_type, parsed.message) == ("ValueError", "bottom reached\nsecond line")


def test_library_frames_are_not_in_app_and_other_text_is_no_traceback() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/main.py", line 9, in <module>\n'
        "    run()\n"
        '  File "/usr/lib/python3.12/json/__init__.py", line 346, in loads\n'
        '  File "/venv/lib/python3.12/site-packages/lib/x.py", line 1, in f\n'
        "    g()\n"
        "    ~^^\n"
        "lib.errors.Broken\n"
    )
    parsed = parse_traceback(text)
    assert parsed is not None
    assert [(f.function, f.in_app, f.context_line) for f in parsed.frames] == [
        ("<module>", True, "run()"),
        ("loads", False, ""),
        ("f", False, "g()"),
    ]
    assert (parsed.exception_type, parsed.message) == ("lib.errors.Broken", "")
    assert parse_traceback("java.lang.NullPointerException\n\tat Foo.bar(Foo.java:3)") is None
