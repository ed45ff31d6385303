"""The `triage-daemon` command: one module per group of commands.

common.py holds the app and what every command shares; service.py runs and watches the
daemon (run, status, replay); tickets.py lists and corrects tickets; model.py
classifies and trains; demo.py shows the daemon on embedded servers.
"""

# Importing a module registers its commands; the order here is the order of --help.
from .common import app  # noqa: I001
from . import service, tickets, model, demo  # noqa: F401

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console script entry
    app()
