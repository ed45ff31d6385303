"""The `triage-daemon` command: one module per group of commands.

common.py holds the app and what every command shares; service.py runs, checks and
watches the daemon (run, check, status, replay); tickets.py lists and corrects tickets;
rules.py checks the coordinator's rules; triage.py reports the corrections and review;
model.py classifies and trains; demo.py shows the daemon on embedded servers.
"""

# Importing a module registers its commands; the order here is the order of --help.
from .common import app  # noqa: I001
from . import service, tickets, rules, triage, model, demo  # noqa: F401

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console script entry
    app()
