"""The HEAR 2021 API (``load_model``, ``get_scene_embeddings``, ``get_timestamp_embeddings``), so a
mixtape encoder runs in hear-eval-kit and every benchmark built on it:

    hear-validator mixtape.hear -m runs/my/encoder

``model_file_path`` is an export folder (``mixtape export``) or a pre-training checkpoint. Audio comes
as ``[n, samples]`` at the model's ``sample_rate`` (the encoder's: 16 kHz by default). A scene
embedding is the track-level embedding mixtape uses everywhere (mean over the patches that cover the
clip); a timestamp embedding is the embedding of the ~2-s patch centred on it, every 48 ms (3 hops
of 16 ms, within HEAR's 50-ms tolerance), from 0 to the end of the clip, the audio being padded with
half a patch of silence at both ends.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mixtape.errors import MixtapeError
from mixtape.models.inference import AudioEncoder, AudioInputError, load_encoder

#: Interval between timestamp embeddings: 3 frames of 256 samples at 16 kHz (HEAR asks for <= 50 ms).
TIMESTAMP_HOP_SECONDS = 0.048


class HearModel(nn.Module):
    """A mixtape encoder as HEAR expects it: a torch module with ``sample_rate``,
    ``scene_embedding_size`` and ``timestamp_embedding_size``. Move it with ``.to(device)``."""

    def __init__(self, audio_encoder: AudioEncoder) -> None:
        super().__init__()
        self.encoder = audio_encoder.encoder
        self._api = audio_encoder
        self.sample_rate = audio_encoder.sample_rate
        self.scene_embedding_size = audio_encoder.embedding_dim
        self.timestamp_embedding_size = audio_encoder.embedding_dim

    def api(self) -> AudioEncoder:
        """The audio encoder, on the device this module was moved to."""
        self._api.device = next(self.encoder.parameters()).device
        return self._api


def load_model(model_file_path: str | Path = "", device: str | torch.device | None = None) -> HearModel:
    """The HEAR model of a mixtape export folder or pre-training checkpoint (there is no default model)."""
    if not model_file_path:
        raise MixtapeError(
            "mixtape.hear.load_model needs model_file_path: an export folder (mixtape export) or a pre-training "
            "checkpoint; mixtape ships no default weights"
        )
    return HearModel(load_encoder(model_file_path, device=device))


def _check_batch(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor) or audio.ndim != 2:
        shape = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
        raise AudioInputError(f"HEAR audio must be a torch tensor [n_sounds, n_samples], got {shape}")
    if not isinstance(model, HearModel):
        raise MixtapeError(f"HEAR model must come from mixtape.hear.load_model, got {type(model).__name__}")
    return audio


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """``[n, samples]`` at ``model.sample_rate`` → ``float32 [n, D]`` on the audio's device."""
    audio = _check_batch(audio, model)
    vectors = model.api().embed_batch(list(audio), model.sample_rate)
    return torch.from_numpy(vectors).to(audio.device)


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """``[n, samples]`` → (``float32 [n, T, D]``, timestamps ``[n, T]`` in milliseconds), on the audio's device."""
    audio = _check_batch(audio, model)
    api = model.api()
    frames = [
        api.embed_frames(row, model.sample_rate, hop_seconds=TIMESTAMP_HOP_SECONDS, centered=True) for row in audio
    ]
    if not frames:
        return torch.zeros((0, 0, model.timestamp_embedding_size)), torch.zeros((0, 0))
    embeddings = torch.stack([torch.from_numpy(v) for _, v in frames]).to(audio.device)
    timestamps = torch.stack([torch.from_numpy(t * 1000.0) for t, _ in frames]).to(torch.float32).to(audio.device)
    return embeddings, timestamps
