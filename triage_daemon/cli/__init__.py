"""The `triage-daemon` command: one module per group of commands.

common.py holds the app and what every command shares; service.py runs and watches the
daemon (run, status, replay); tickets.py lists and corrects tickets; model.py
classifies and trains; demo.py shows the daemon on embedded servers.
"""

from . import demo, model, service, tickets  # noqa: F401  (they register their commands)
from .common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console script entry
    app()
