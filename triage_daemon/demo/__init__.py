"""`triage-daemon demo`: the real daemon on embedded mail servers, fed sample mail, shown live."""

from .run import run_demo

__all__ = ["run_demo"]
