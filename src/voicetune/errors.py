"""The one user-error type: the CLI prints its message on one line and exits with code 2."""

# Characters that end a line (for a terminal or ``str.splitlines``), written as escapes in a message: a
# user's value quoted in it (a CSV cell, a role, a file name) must not break the message over lines.
_LINE_BREAKS = str.maketrans(
    {c: c.encode("unicode_escape").decode("ascii") for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
)


class VoicetuneError(Exception):
    """A problem with the user's input (a file, a field, a flag, an endpoint), not a bug.

    The message names what is wrong and where (file, line, field or URL) so that the user can fix it
    without reading a traceback. It is always one line: line breaks in it are written as escapes (``\\n``).
    """

    def __init__(self, message: object = "", *args: object):
        super().__init__(str(message).translate(_LINE_BREAKS), *args)
