"""Exceptions raised by gradcheck. Every message is one sentence that says what to do."""


class GradcheckError(Exception):
    """Base class of gradcheck's errors."""


class InputError(GradcheckError, ValueError):
    """The params, the gradients or an option cannot be used as given."""


class ForwardError(GradcheckError):
    """The user's forward (or forward_backward) raised or returned something unusable."""
