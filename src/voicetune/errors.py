"""The one user-error type: the CLI prints its message on one line and exits with code 2."""


class VoicetuneError(Exception):
    """A problem with the user's input (a file, a field, a flag, an endpoint), not a bug.

    The message names what is wrong and where (file, line, field or URL) so that the user can fix it
    without reading a traceback.
    """
