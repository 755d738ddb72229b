"""One exception type for bad user input: the CLI and train.py print its message as one line."""


class UserError(ValueError):
    """A bad value from the user. The message names the value and what is allowed."""


class DataError(Exception):
    """A data file that cannot be read, found while training: the message names the file.
    Not a UserError: the run has started, so it ends with a `failed` record."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line. An error raised in a DataLoader worker comes back
    wrapped in the worker's traceback; its own message is the last line of that."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split())
