"""What the demo shows: the live table of mails and outcomes, the summary, one reply.

Senders and subjects come from mail: they are shown as ``Text`` (never read as rich
markup) with control characters escaped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..safe_text import visible
from ..tables import Disposition

if TYPE_CHECKING:
    from .run import DemoSummary, Row
    from .servers import Relayed

REPLY_LINES = 14
OUTCOME_STYLE = {
    Disposition.ticket: "green",
    Disposition.followup: "cyan",
    Disposition.duplicate: "blue",
    Disposition.not_technical: "yellow",
    Disposition.ignored: "bright_black",
    Disposition.quarantined: "bold red",
}
# Columns left out on narrow terminals: (below this many characters, column).
NARROW_DROPS = ((120, "time"), (95, "from"))


def outcome_text(row: Row) -> Text:
    outcome = row.outcome
    if outcome is None:
        return Text("waiting…", style="dim italic")
    kind = outcome.disposition
    if kind == Disposition.ticket:
        # An FAQ key names its topic too (webex-lobby is webex): show one or the other.
        has_faq = row.faq and row.faq != "none"
        label = f"ticket · {row.faq}" if has_faq else f"ticket · {row.topic or '?'}, no FAQ"
        label += " · review" if row.review else ""
    elif kind == Disposition.followup:
        label = f"follow-up of #{outcome.ticket_id}"
    elif kind == Disposition.duplicate:
        label = f"duplicate of #{outcome.ticket_id}"
    elif kind == Disposition.not_technical:
        label = "not technical"
    elif kind == Disposition.ignored:
        label = f"ignored · {outcome.reason.split(':', 1)[0]}"
    else:
        label = f"{kind.value} · {outcome.reason}"
    return Text(visible(label), style=OUTCOME_STYLE.get(kind, ""))


def reply_text(row: Row) -> Text:
    if row.outcome is None or not row.outcome.reply:
        return Text("—", style="dim")
    if row.reply_received:
        return Text.assemble(row.outcome.reply, (" ✓", "bold green"))
    return Text.assemble(row.outcome.reply, (" …", "dim"))


def table(rows: list[Row], title: str, caption: str, width: int = 200) -> Table:
    """The live table, without the columns NARROW_DROPS leaves out at ``width``."""
    hidden = {name for limit, name in NARROW_DROPS if width < limit}
    view = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        expand=True,
        title_style="bold",
        caption_style="dim",
    )
    # Outcome and reply keep their width; sender and subject share what is left.
    columns = {
        "time": dict(no_wrap=True, width=8),
        "mailbox": dict(no_wrap=True, width=7),
        "from": dict(no_wrap=True, overflow="ellipsis", ratio=2, min_width=10),
        "subject": dict(no_wrap=True, overflow="ellipsis", ratio=3, min_width=12),
        "outcome": dict(no_wrap=True, overflow="ellipsis"),
        "ticket": dict(no_wrap=True, justify="right", width=6),
        "reply sent": dict(no_wrap=True, overflow="ellipsis"),
    }
    for name, options in columns.items():
        if name not in hidden:
            view.add_column(name, **options)
    for row in rows:
        at = row.handled or row.delivered
        ticket = f"#{row.outcome.ticket_id}" if row.outcome and row.outcome.ticket_id else ""
        cells = {
            "time": Text(at.strftime("%H:%M:%S"), style="" if row.handled else "dim"),
            "mailbox": row.mailbox,
            "from": Text(visible(row.sender)),
            "subject": Text(visible(row.subject)),
            "outcome": outcome_text(row),
            "ticket": ticket,
            "reply sent": reply_text(row),
        }
        view.add_row(*(cell for name, cell in cells.items() if name not in hidden))
    return view


def summary_lines(summary: DemoSummary) -> list[str]:
    count = summary.count
    ignored = [r for r in summary.handled if r.outcome.disposition == Disposition.ignored]
    why = ", ".join(sorted({r.outcome.reason.split(":", 1)[0] for r in ignored}))
    samples, mails = len({r.sample.file for r in summary.rows}), len(summary.rows)
    copies = f" ({samples} samples: one went to two helpdesks)" if samples < mails else ""
    mailboxes = len({r.mailbox for r in summary.rows})
    folders = " · ".join(f"{name} {n}" for name, n in sorted(summary.folders.items()))
    return [
        f"{len(summary.handled)} of {mails} mails handled in {mailboxes} mailboxes"
        f"{copies}: {summary.tickets_opened} tickets opened ({count(Disposition.ticket)} "
        f"technical, {count(Disposition.not_technical)} not technical), "
        f"{count(Disposition.followup)} follow-up, {count(Disposition.duplicate)} duplicate, "
        f"{len(ignored)} ignored"
        + (f" ({why})" if why else "")
        + f", {count(Disposition.quarantined)} quarantined.",
        f"Replies: {summary.replies_queued} queued, {summary.outbox.get('sent', 0)} sent, "
        f"{len(summary.replies_received)} received by the embedded SMTP server.",
        f"IMAP folders now (all mailboxes): {folders}.",
    ]


def reply_panel(mail: Relayed, lines: int = REPLY_LINES) -> Panel:
    """The start of one reply's plain text, under its recipient and subject."""
    body = mail.message.get_body(("plain",))
    text = (body.get_content().strip() if body is not None else "(no text part)").splitlines()
    text = text[:lines] + ["…"] if len(text) > lines else text
    head = [f"To: {mail.message.get('To', '')}", f"Subject: {mail.subject}", ""]
    body = Text("\n".join(visible(line) for line in head + text))
    return Panel(
        body,
        title="One of the replies, as the teacher receives it",
        title_align="left",
        border_style="dim",
        expand=False,
    )
