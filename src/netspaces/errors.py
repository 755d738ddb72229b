"""One exception type for bad user input: the CLI and train.py print its message as one line."""


class UserError(ValueError):
    """A bad value from the user. The message names the value and what is allowed."""
