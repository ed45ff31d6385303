"""Commands a specialist or coordinator writes in a reply, on lines of their own.

One clear syntax: a line that starts with ``#`` and a word, e.g. ``#close``,
``#topic eclass``, ``#faq webex-lobby``, ``#note κάλεσα τη διευθύντρια``; each has a
Greek alias (``#κλείσιμο``, ``#θέμα``, ...), accents and case not minding. Everything
else in the reply is the answer for the teacher. A line that looks like a command but
is none makes the whole reply an error: nothing reaches the teacher by mistake.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ..catalogue import FAQ_KEYS, TOPICS


@dataclass(frozen=True)
class Spec:
    name: str
    aliases: tuple[str, ...]
    argument: str  # "", "topic", "faq", "address", "text"
    help: str


# The order here is the order of the help text the specialist receives.
COMMANDS: tuple[Spec, ...] = (
    Spec("close", ("κλείσιμο", "κλείσε"), "", "κλείνει το αίτημα"),
    Spec("topic", ("θέμα",), "topic", "αλλάζει θέμα και το αναθέτει στον ειδικό του"),
    Spec("assign", ("ανάθεση",), "address", "το αναθέτει σε άλλον ειδικό (διεύθυνση)"),
    Spec("faq", ("έτοιμη",), "faq", "στέλνει στον εκπαιδευτικό την έτοιμη απάντηση"),
    Spec("not-technical", ("μη-τεχνικό", "μητεχνικό"), "", "το σημειώνει μη τεχνικό"),
    Spec("note", ("σημείωση",), "text", "εσωτερική σημείωση, δεν στέλνεται στον εκπαιδευτικό"),
    Spec("escalate", ("κλιμάκωση", "υπουργείο"), "", "το παραπέμπει τώρα στο Υπουργείο"),
)

_COMMAND_LINE = re.compile(r"^\s*#([^\W\d_][\w-]*)(?:[ \t]+(.*?))?\s*$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _key(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_BY_WORD = {_key(word): spec for spec in COMMANDS for word in (spec.name, *spec.aliases)}


@dataclass(frozen=True)
class Command:
    name: str
    argument: str = ""


@dataclass
class Reply:
    """A staff reply split into its commands and the answer text for the teacher."""

    commands: list[Command] = field(default_factory=list)
    answer: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def only_commands(self) -> bool:
        return not self.answer.strip()


def parse_reply(text: str) -> Reply:
    """Split ``text`` (the staff member's own new text, quotes removed) into commands and
    answer. Errors name each bad line; the caller sends nothing to the teacher then."""
    reply = Reply()
    kept: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _COMMAND_LINE.match(line)
        if not match:
            kept.append(line)
            continue
        spec = _BY_WORD.get(_key(match.group(1)))
        argument = (match.group(2) or "").strip()
        if spec is None:
            reply.errors.append(f"γραμμή {number}: άγνωστη εντολή «#{match.group(1)}»")
            continue
        problem = _check_argument(spec, argument)
        if problem:
            reply.errors.append(f"γραμμή {number}: #{spec.name}: {problem}")
            continue
        reply.commands.append(Command(spec.name, argument))
    reply.answer = "\n".join(kept).strip("\n")
    return reply


def _check_argument(spec: Spec, argument: str) -> str | None:
    if spec.argument == "":
        return "δεν παίρνει συνέχεια στη γραμμή" if argument else None
    if not argument:
        return "χρειάζεται συνέχεια στη γραμμή (π.χ. " + _example(spec) + ")"
    if spec.argument == "topic" and argument.lower() not in TOPICS:
        return f"άγνωστο θέμα «{argument}»· επιτρέπονται: {', '.join(TOPICS)}"
    if spec.argument == "faq" and argument.lower() not in FAQ_KEYS:
        return f"άγνωστη έτοιμη απάντηση «{argument}»"
    if spec.argument == "address" and not _ADDRESS.match(argument):
        return f"«{argument}» δεν είναι διεύθυνση email"
    return None


def _example(spec: Spec) -> str:
    return {
        "topic": "#topic eclass",
        "faq": "#faq webex-lobby",
        "address": "#assign onoma@pekes1.att.example",
        "text": "#note τηλεφώνησα στο σχολείο",
    }[spec.argument]


def help_text() -> str:
    """The list of commands, for a staff member who wrote an unknown one."""
    lines = []
    for spec in COMMANDS:
        usage = f"#{spec.name}" + (f" {_example(spec).split(' ', 1)[1]}" if spec.argument else "")
        aliases = ", ".join(f"#{a}" for a in spec.aliases)
        lines.append(f"{usage}  ({aliases}): {spec.help}")
    lines.append("Έτοιμες απαντήσεις: " + ", ".join(FAQ_KEYS))
    return "\n".join(lines)
