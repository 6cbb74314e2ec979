"""Errors that reach the user as one line on stderr and exit status 1."""


class BbcError(Exception):
    """Bad input or a failed check: the message is the whole story, no traceback."""


class FormatError(BbcError):
    """A .bbc file that is not one, is damaged, or is truncated."""


class ModelError(BbcError):
    """A model that cannot be found, fails its checksum, or is not the one a file was coded with."""


class ArithmeticMismatchError(BbcError):
    """A file whose probabilities depend on arithmetic (torch build, CPU kernels, device) other than this
    machine's: refused before decoding, naming what differs."""


class ImageError(BbcError):
    """An image that cannot be read or is of an unsupported kind."""
