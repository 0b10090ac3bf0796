"""mixtape.audio: audio decoding, log-mel features, the memory-mapped feature store and patch reading.

Stage 'features' of the pipeline: audio files + tracks table -> a feature store that training reads
random 96x128 patches from without decoding audio again.
"""

from .decode import AudioDecodeError, load_audio
from .extract import ExtractionReport, UnusableAudio, extract_features, merge_stores, shard_of
from .files import AUDIO_SUFFIXES, scan_audio_folder
from .mel import MelConfig, log_mel, log_mel_batch, mel_filterbank
from .patches import PatchReader, covering_starts
from .store import FeatureStore, StoreError, StoreSettings, TrackNotInStore, store_fingerprint, verify_frames
from .tags import TAG_FIELDS, TagReadError, read_tags

__all__ = [
    "AUDIO_SUFFIXES",
    "AudioDecodeError",
    "ExtractionReport",
    "FeatureStore",
    "MelConfig",
    "PatchReader",
    "covering_starts",
    "StoreError",
    "StoreSettings",
    "TAG_FIELDS",
    "TagReadError",
    "TrackNotInStore",
    "UnusableAudio",
    "extract_features",
    "load_audio",
    "log_mel",
    "log_mel_batch",
    "mel_filterbank",
    "merge_stores",
    "read_tags",
    "scan_audio_folder",
    "shard_of",
    "store_fingerprint",
    "verify_frames",
]
