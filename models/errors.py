"""Errors the runtime raises; each message is one line that names the problem."""


class ContrasatError(Exception):
    """Base class: bad input, bad model or a cancelled run. The CLI maps it to exit code 2."""


class InputError(ContrasatError):
    """A raster, AOI or output path the job cannot use."""


class ModelError(ContrasatError):
    """A model file that is missing, corrupt or has no usable model card."""


class Cancelled(ContrasatError):
    """The caller asked the job to stop; nothing was written."""


class OutputError(InputError):
    """An output path the job must not or cannot write (clash with an input, bad format, full disk)."""
