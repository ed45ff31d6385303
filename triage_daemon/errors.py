"""Errors and control-flow signals shared by every stage of the pipeline."""


class TriageError(Exception):
    """Root of every real error raised by triage-daemon."""


class ConfigError(TriageError):
    """The configuration file (or rules, templates, model) is invalid.

    ``problems`` lists every problem found, each naming the file, the key and the fix.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ParseError(TriageError):
    """A message cannot be parsed into a usable mail; it goes to quarantine."""


class ModelError(TriageError):
    """The trained model is missing, corrupt or made by another scikit-learn version."""


class MailboxError(TriageError):
    """An IMAP mailbox cannot be reached or used (login, select, network)."""


# Control-flow signals: not errors. They are caught in one place (pipeline.py).


class Disposition(Exception):
    """Base of the signals that end a message's trip through the pipeline early."""

    def __init__(self, reason: str, stage: str = ""):
        self.reason = reason
        self.stage = stage
        super().__init__(reason)


class IgnoreMessage(Disposition):
    """Automatic mail (auto-reply, bounce, list, our own): recorded, never answered."""


class QuarantineMessage(Disposition):
    """Mail we cannot handle safely: set aside in the quarantine folder with the reason."""
