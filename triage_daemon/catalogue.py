"""The labels of ../spec/catalogue.md: topics and FAQ keys, part of the product's contract."""

TOPICS: tuple[str, ...] = ("webex", "eclass", "eme", "other")

# FAQ key -> the topic it belongs to.
FAQ_TOPIC: dict[str, str] = {
    "webex-account": "webex",
    "webex-room-link": "webex",
    "webex-lobby": "webex",
    "webex-audio-video": "webex",
    "webex-share": "webex",
    "webex-mobile": "webex",
    "webex-phone": "webex",
    "eclass-login": "eclass",
    "eclass-course": "eclass",
    "eclass-assignment": "eclass",
    "eme-login": "eme",
    "eme-hive": "eme",
    "psd-account": "other",
}

FAQ_KEYS: tuple[str, ...] = tuple(FAQ_TOPIC)
NO_FAQ = "none"
