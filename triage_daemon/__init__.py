"""triage-daemon: the email-driven technical helpdesk of the PEKES of Attica."""

__version__ = "0.1.0"
