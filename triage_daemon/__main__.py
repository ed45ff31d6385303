"""`python -m triage_daemon` is the `triage-daemon` command."""

from .cli import app

app(prog_name="triage-daemon")
