"""The embedded music world: a generated catalogue whose ground truth is known.

Audio rendered from latent attributes (genre, mood, instruments, artist signature), MTG-Jamendo
style tags and artist-disjoint splits, Million-Playlist-Dataset playlists from simulated listeners
(with a held-out set), dim-sim style similarity triplets, and world.json with the latent truth.
"""

from mixtape.world.build import World, WorldError, synth
from mixtape.world.sizes import SAMPLE_RATE, SIZES, WorldSize

__all__ = ["SAMPLE_RATE", "SIZES", "World", "WorldError", "WorldSize", "synth"]
