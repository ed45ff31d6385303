"""Replay: put quarantined mail back in INBOX so the daemon looks at it again.

For the operator, once the cause (a bug, a too-small size limit) is fixed. The
quarantine records are removed, so the replayed mail is not taken for a duplicate.
"""

from __future__ import annotations

from sqlalchemy import delete

from .config import MailboxSettings
from .db import Database
from .errors import MailboxError
from .fetch import CONNECTION_ERRORS, MailboxConnection, describe
from .tables import Disposition, MessageRecord


def replay(box: MailboxSettings, db: Database) -> int:
    """Move every mail in ``box``'s quarantine folder back to INBOX; returns how many."""
    connection = MailboxConnection(box)
    connection.open()
    try:
        client = connection.client
        quarantine = connection.server_name(box.folders.quarantine)
        try:
            client.select_folder(quarantine)
            uids = client.search(["ALL"])
            if uids:
                if connection.can_move:
                    client.move(uids, connection.server_name(box.folders.inbox))
                else:
                    client.copy(uids, connection.server_name(box.folders.inbox))
        except CONNECTION_ERRORS as exc:
            raise MailboxError(f"{box.name}: replay failed: {describe(exc)}") from exc
    finally:
        connection.close()
    with db.session() as session:
        session.exec(
            delete(MessageRecord).where(
                MessageRecord.mailbox == box.name,
                MessageRecord.disposition == Disposition.quarantined,
            )
        )
    return len(uids)
