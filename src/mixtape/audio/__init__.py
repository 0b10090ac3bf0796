"""mixtape.audio: audio decoding, log-mel features, the memory-mapped feature store and patch reading.

Stage 'features' of the pipeline: audio files + tracks table -> a feature store that training reads
random 96x128 patches from without decoding audio again.
"""

from .decode import AudioDecodeError, load_audio
from .extract import ExtractionReport, UnusableAudio, extract_features, merge_stores, shard_of
from .mel import MelConfig, log_mel, log_mel_batch, mel_filterbank
from .patches import PatchReader
from .store import FeatureStore, StoreError, StoreSettings, TrackNotInStore, store_fingerprint, verify_frames

__all__ = [
    "AudioDecodeError",
    "ExtractionReport",
    "FeatureStore",
    "MelConfig",
    "PatchReader",
    "StoreError",
    "StoreSettings",
    "TrackNotInStore",
    "UnusableAudio",
    "extract_features",
    "load_audio",
    "log_mel",
    "log_mel_batch",
    "mel_filterbank",
    "merge_stores",
    "shard_of",
    "store_fingerprint",
    "verify_frames",
]
