"""Whether an untyped eBay card row is the item's location, in any interface language; pure."""

from __future__ import annotations

import re

# How a location row starts in the interface languages eBay serves: "Located in Australia", "from Germany",
# "aus China" and "de Canadá" are on real result pages; the others ("d'Allemagne", "Da Cina", "z Chin",
# "Artikelstandort: China", "来自 日本") are those languages' usual wording of "from" / "located in". Read like the
# currency markers in scrapers/money.py: any language, whatever the site.
_LOCATION_LEADS = (
    # English
    "located in", "item location", "location", "ships from", "from",
    # German
    "artikelstandort", "standort", "versand aus", "aus",
    # French
    "en provenance de", "en provenance du", "en provenance des", "en provenance d'", "provenance",
    "situé en", "situé au", "situé aux", "situé à", "lieu où se trouve l'objet", "de", "du", "des", "d'",
    # Italian
    "si trova in", "località", "spedito da", "da", "dal", "dalla", "dagli", "dall'",
    # Spanish and Portuguese
    "ubicado en", "ubicación", "desde", "del", "localizado em", "localização", "do", "dos",
    # Dutch
    "locatie", "verzonden vanuit", "uit",
    # Polish
    "lokalizacja", "wysyłka z", "z", "ze",
    # Russian
    "местонахождение", "из",
    # Chinese and Japanese
    "物品所在地", "所在地", "来自", "來自", "位于", "位於", "発送元",
)
# A lead, an optional colon, then a place: no digits (prices, counts, dates never are locations), at most a few words.
_LOCATION_LINE = re.compile(
    r"^(?:" + "|".join(re.escape(lead).replace("'", "['’]") for lead in sorted(_LOCATION_LEADS, key=len, reverse=True))
    + r")(?:\s*[:：]\s*|\s+|(?<=['’]))(?P<place>[^\d\s][^\d]{1,80})$",
    re.IGNORECASE,
)
# The first letters of the leads: most rows ("Buy It Now", "+£4.99 postage", "12 sold") are ruled out by the first.
_LOCATION_INITIALS = frozenset(lead[0] for lead in _LOCATION_LEADS) | frozenset(lead[0].upper() for lead in _LOCATION_LEADS)


def is_location_line(text: str) -> bool:
    """True for a stripped row such as "Located in Australia", "aus China" or "来自 日本"; False for shipping, offers,
    counts and prices."""
    return bool(text) and text[0] in _LOCATION_INITIALS and _LOCATION_LINE.match(text) is not None
