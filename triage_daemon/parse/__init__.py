"""Reading a raw message: MIME, charsets, headers and addresses, HTML, quotes and signatures.

``parse_message`` (in message.py) is the entry point; the other modules are its steps.
"""

from .message import parse_message

__all__ = ["parse_message"]
