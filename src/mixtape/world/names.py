"""Human-readable names for artists, albums, tracks and playlists (MPD JSON carries names, not only ids)."""

from __future__ import annotations

import numpy as np

_ADJ = (
    "Velvet",
    "Silent",
    "Electric",
    "Golden",
    "Hollow",
    "Crimson",
    "Paper",
    "Distant",
    "Neon",
    "Quiet",
    "Wild",
    "Broken",
    "Silver",
    "Lunar",
    "Northern",
    "Restless",
    "Amber",
    "Frozen",
    "Bright",
    "Secret",
    "Wandering",
    "Faded",
    "Burning",
    "Gentle",
    "Midnight",
    "Ancient",
    "Hidden",
    "Falling",
    "Blue",
    "Iron",
)
_NOUN = (
    "Fox",
    "River",
    "Harbor",
    "Echo",
    "Lantern",
    "Garden",
    "Mirror",
    "Signal",
    "Meadow",
    "Tide",
    "Engine",
    "Comet",
    "Forest",
    "Window",
    "Canyon",
    "Orchard",
    "Satellite",
    "Island",
    "Storm",
    "Feather",
    "Mountain",
    "Bridge",
    "Ember",
    "Parade",
    "Compass",
    "Horizon",
    "Cathedral",
    "Valley",
    "Ocean",
    "Crown",
)
_FIRST = (
    "Mara",
    "Jonas",
    "Ines",
    "Theo",
    "Lena",
    "Omar",
    "Aiko",
    "Pablo",
    "Nora",
    "Felix",
    "Sana",
    "Hugo",
    "Elif",
    "Ravi",
    "Clara",
    "Tomas",
    "Yara",
    "Milo",
    "Ada",
    "Kofi",
)
_LAST = (
    "Lind",
    "Okafor",
    "Berg",
    "Moreau",
    "Tanaka",
    "Silva",
    "Novak",
    "Haddad",
    "Quinn",
    "Rossi",
    "Kowalski",
    "Achebe",
    "Larsen",
    "Duarte",
    "Ivanova",
    "Nakamura",
    "Brennan",
    "Ferreira",
    "Weiss",
    "Osei",
)


def _pick(rng: np.random.Generator, words: tuple[str, ...], n: int) -> list[str]:
    return [words[i] for i in rng.integers(0, len(words), n)]


def artist_names(rng: np.random.Generator, n: int) -> list[str]:
    """Band-like or person-like names; a numeral disambiguates repeats so names stay unique."""
    kind = rng.integers(0, 3, n)
    adj, noun, first, last = _pick(rng, _ADJ, n), _pick(rng, _NOUN, n), _pick(rng, _FIRST, n), _pick(rng, _LAST, n)
    names = [
        f"The {a} {b}s" if k == 0 else f"{given} {family}" if k == 1 else f"{a} {b}"
        for k, a, b, given, family in zip(kind, adj, noun, first, last, strict=True)
    ]
    return _unique(names)


def title_names(rng: np.random.Generator, n: int, pattern: str = "{a} {b}") -> list[str]:
    """Track or album titles from ``pattern`` with {a} an adjective and {b} a noun (repeats allowed, as in life)."""
    return [pattern.format(a=a, b=b) for a, b in zip(_pick(rng, _ADJ, n), _pick(rng, _NOUN, n), strict=True)]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return out


PLAYLIST_TEMPLATES: dict[str, tuple[str, ...]] = {
    "mood": ("{x} vibes", "{x} songs", "feeling {x}", "{x} mix", "{x}", "so {x}"),
    "genre": ("{x}", "best of {x}", "{x} classics", "{x} mix", "my {x}", "{x} favourites"),
    "activity": ("{x}", "{x} mix", "music for {x}", "{x} playlist", "{x} time"),
    "genre+mood": ("{m} {g}", "{g} for {m} days", "{m} {g} mix"),
}


def playlist_name(rng: np.random.Generator, kind: str, value: str) -> str:
    """A listener-style name for a themed playlist (what a real user would type)."""
    templates = PLAYLIST_TEMPLATES[kind]
    t = templates[int(rng.integers(0, len(templates)))]
    if kind == "genre+mood":
        g, m = value.split("+")
        return t.format(g=g, m=m)
    return t.format(x=value)
