"""What the helpdesk writes: replies from the Jinja2 templates, composed as MIME bytes.

build.py renders the templates and threads the reply; compose.py encodes and folds
headers and bodies; vocative.py puts a Greek first name in the vocative for the greeting.
"""

from .build import ACK, FAQ, NOT_TECHNICAL, Replies, reply_recipient

__all__ = ["ACK", "FAQ", "NOT_TECHNICAL", "Replies", "reply_recipient"]
