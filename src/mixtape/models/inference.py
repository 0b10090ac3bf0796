"""Embeddings of raw audio in one call: ``mixtape.load_encoder(path).embed(waveform, sample_rate)``.

An :class:`AudioEncoder` wraps a trained encoder with its input contract (``EncoderBundle``: log-mel
settings, patch length) and does what the pipeline does to a track before the network sees it, so a
vector from this API equals the one ``mixtape embed`` stores for the same audio:

- channels are averaged and the audio resampled to the encoder's rate with soxr (the feature stage's
  quality setting);
- audio shorter than one patch is looped from its start up to exactly one patch (the feature stage's
  rule for short tracks);
- log-mel frames are rounded to float16, as the feature store keeps them (the encoder was trained on
  those values);
- the track's embedding is the mean over the patches that cover it (``covering_starts``: consecutive
  non-overlapping patches, plus one ending at the end).

Long audio is embedded in bounded memory: log-mel frames are computed for ``chunk_patches`` patches at
a time and the network's outputs summed as they come, so an hour costs the same memory as a minute.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import torch

from mixtape import fileio
from mixtape.audio.decode import AudioDecodeError
from mixtape.audio.extract import MAX_PEAK, track_audio
from mixtape.audio.mel import MelConfig, default_device, log_mel_batch
from mixtape.audio.patches import covering_starts
from mixtape.audio.store import StoreSettings
from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger
from mixtape.models.bundle import EncoderBundle
from mixtape.models.embedding import PatchPooler, inference

log = get_logger(__name__)

#: Patches whose log-mel frames are computed at once: bounds the memory of long audio (~3 MB of frames).
CHUNK_PATCHES = 64
#: More channels than this on the shorter axis of a 2-D array is not a multichannel waveform.
MAX_CHANNELS = 16

AudioLike = np.ndarray | torch.Tensor


class AudioInputError(MixtapeError, ValueError):
    """A waveform or sample rate the encoder cannot take (named in the message)."""


def check_sample_rate(sample_rate: Any) -> int:
    """The sample rate as an int, or a clear error: a float, bool or non-positive rate is refused."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise AudioInputError(
            f"sample_rate must be an integer number of Hz (e.g. 44100), got {sample_rate!r} "
            f"({type(sample_rate).__name__})"
        )
    if sample_rate <= 0:
        raise AudioInputError(f"sample_rate must be positive, got {sample_rate}")
    return int(sample_rate)


def as_mono(audio: Any, name: str = "audio") -> torch.Tensor:
    """A float32 mono waveform from ``[samples]``, ``[channels, samples]`` or ``[samples, channels]``
    (the shorter axis, at most 16 long, is the channels), numpy or torch (device kept)."""
    if isinstance(audio, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(audio))
    elif isinstance(audio, torch.Tensor):
        x = audio.detach()
    else:
        raise AudioInputError(f"{name}: expected a numpy array or torch tensor of samples, got {type(audio).__name__}")
    if not (x.is_floating_point()):
        raise AudioInputError(
            f"{name}: samples must be floating point in [-1, 1], got dtype {str(x.dtype).replace('torch.', '')} "
            "(int16 PCM: divide by 32768)"
        )
    if x.ndim == 2:
        axis = int(x.shape[1] < x.shape[0])  # channels: the shorter axis
        if x.shape[axis] > MAX_CHANNELS:
            raise AudioInputError(
                f"{name}: shape {tuple(x.shape)} is not [samples], [channels, samples] or [samples, channels] "
                f"(at most {MAX_CHANNELS} channels)"
            )
        x = x.to(torch.float32).mean(dim=axis)
    elif x.ndim != 1:
        raise AudioInputError(f"{name}: expected 1-D or 2-D samples, got shape {tuple(x.shape)}")
    x = x.to(torch.float32)
    if x.numel() == 0:
        raise AudioInputError(f"{name}: empty waveform (0 samples)")
    # min and max in one pass without a temporary the size of the audio (an hour is 230 MB): NaN and
    # infinities propagate into them, and the samples are counted only when there is something to report.
    low, high = (float(v) for v in torch.aminmax(x))
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int((~torch.isfinite(x)).sum())
        raise AudioInputError(f"{name}: {bad} of {x.numel()} samples are NaN or infinite")
    peak = max(-low, high)
    if peak > MAX_PEAK:
        raise AudioInputError(
            f"{name}: peak amplitude {peak:.3g} is out of range (samples belong near [-1, 1]; above {MAX_PEAK:g} "
            "the spectrum overflows)"
        )
    return x


def loop_to(x: torch.Tensor, n_samples: int) -> torch.Tensor:
    """``x`` repeated from its start up to ``n_samples`` when shorter (the feature stage's short-track rule)."""
    if len(x) >= n_samples:
        return x
    return x.repeat(math.ceil(n_samples / len(x)))[:n_samples]


@dataclass
class FileEmbeddings:
    """What ``embed_files`` returns: ``vectors`` ``[N, D]`` in the order of the paths, a NaN row for each
    file that failed, and ``failures`` (path, reason) for those. ``np.asarray(result)`` gives the vectors."""

    vectors: np.ndarray
    paths: list[str]
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the files that were embedded."""
        return ~np.isnan(self.vectors).any(axis=1) if len(self.vectors) else np.zeros(0, dtype=bool)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.vectors.shape)

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, key: Any) -> Any:
        return self.vectors[key]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.vectors if dtype is None else self.vectors.astype(dtype)


class AudioEncoder:
    """A trained encoder that takes waveforms: ``embed``, ``embed_batch``, ``embed_files``, ``embed_frames``.

    Made by :func:`load_encoder`. ``sample_rate`` is the rate the network's features are computed at
    (any input rate is resampled to it); ``mel`` the front-end settings; ``patch_seconds`` the length
    of the audio one network input covers.
    """

    def __init__(
        self,
        bundle: EncoderBundle,
        device: str | torch.device | None = None,
        batch_size: int = 64,
        chunk_patches: int = CHUNK_PATCHES,
    ) -> None:
        if batch_size < 1 or chunk_patches < 1:
            raise ValueError(f"batch_size and chunk_patches must be positive, got {batch_size}, {chunk_patches}")
        self.bundle = bundle
        self.mel = MelConfig.model_validate(bundle.mel) if bundle.mel else MelConfig()
        self.device = default_device() if device is None else torch.device(device)
        self.encoder = bundle.encoder.to(self.device).eval()
        self.batch_size, self.chunk_patches = batch_size, chunk_patches
        self.patch_frames = bundle.patch_frames
        # Frames are computed on slices of the waveform; a centred front end is the same on padded audio.
        self._frame_mel = self.mel.model_copy(update={"center": False})
        self._pad = self.mel.frame_size // 2 if self.mel.center else 0

    def __repr__(self) -> str:
        return (
            f"AudioEncoder({self.bundle.source!r}, {self.embedding_dim}-d, {self.sample_rate} Hz, "
            f"{self.patch_seconds:.2f} s patches, device={self.device})"
        )

    @property
    def embedding_dim(self) -> int:
        return int(self.bundle.embedding_dim or 0)

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    @property
    def patch_samples(self) -> int:
        """Samples of audio in one network input (one patch of ``patch_frames`` frames)."""
        return self.mel.samples_for(self.patch_frames)

    @property
    def patch_seconds(self) -> float:
        return self.patch_samples / self.sample_rate

    # --- input ----------------------------------------------------------------------------------

    def waveform(self, audio: AudioLike, sample_rate: int, name: str = "audio") -> torch.Tensor:
        """``audio`` as the encoder's input waveform: mono float32 at ``self.sample_rate``, on the device,
        looped up to one patch when shorter."""
        rate = check_sample_rate(sample_rate)
        x = as_mono(audio, name)
        if rate != self.sample_rate:
            resampled = soxr.resample(x.cpu().numpy(), rate, self.sample_rate, quality=self.mel.resample_quality)
            x = torch.from_numpy(np.ascontiguousarray(resampled, dtype=np.float32))
        return loop_to(x.to(self.device), self.patch_samples)

    def _frame_count(self, wave: torch.Tensor) -> int:
        return self._frame_mel.n_frames(len(wave) + 2 * self._pad)

    def _patches(self, wave: torch.Tensor, starts: np.ndarray) -> Iterator[torch.Tensor]:
        """Patches ``[k, n_mels, patch_frames]`` starting at frames ``starts`` (ascending), ``chunk_patches``
        at a time: only the frames those patches span are computed."""
        hop, size, p = self._frame_mel.hop_size, self._frame_mel.frame_size, self.patch_frames
        if self._pad:
            wave = torch.nn.functional.pad(wave, (self._pad, self._pad))
        steps = torch.arange(p, device=wave.device)
        for c in range(0, len(starts), self.chunk_patches):
            chunk = starts[c : c + self.chunk_patches]
            first, end = int(chunk[0]), int(chunk[-1]) + p
            frames = log_mel_batch(wave[first * hop : (end - 1) * hop + size], self._frame_mel)
            frames = frames.half().float()  # the values a feature store holds
            rows = torch.as_tensor(chunk - first, device=wave.device)[:, None] + steps
            yield frames[rows].transpose(1, 2)

    # --- embeddings ----------------------------------------------------------------------------

    def _pool(self, waves: Iterable[tuple[int, torch.Tensor]], n: int) -> np.ndarray:
        with inference(self.encoder, self.device):
            pooler = PatchPooler(self.encoder, n, self.batch_size, self.device)
            for i, wave in waves:
                starts = covering_starts(self._frame_count(wave), self.patch_frames)
                for patches in self._patches(wave, starts):
                    pooler.add(i, patches)
            return pooler.means()

    def embed(self, audio: AudioLike, sample_rate: int) -> np.ndarray:
        """The track-level embedding ``float32 [D]`` of one waveform (any channel layout and rate)."""
        return self._pool([(0, self.waveform(audio, sample_rate))], 1)[0]

    def embed_batch(self, audios: Sequence[AudioLike], sample_rate: int) -> np.ndarray:
        """``float32 [N, D]``: one embedding per waveform; waveforms of any lengths share forward passes."""
        if isinstance(audios, np.ndarray | torch.Tensor) and audios.ndim == 1:
            raise AudioInputError("embed_batch expects a list of waveforms (or a 2-D [N, samples] array), got 1-D")
        waves = (self.waveform(a, sample_rate, name=f"audio[{i}]") for i, a in enumerate(audios))
        return self._pool(enumerate(waves), len(audios))

    def embed_files(
        self,
        paths: Sequence[str | Path],
        batch_size: int | None = None,
        progress: bool = True,
        workers: int = 2,
    ) -> FileEmbeddings:
        """``[N, D]`` for audio files, decoded as the feature stage decodes them (libsndfile, then ffmpeg;
        too short, silent or unreadable files fail with its reasons), so each vector equals
        ``mixtape embed``'s. A bad file is a NaN row and a ``(path, reason)`` in ``failures``; it never
        stops the batch. ``workers`` threads decode ahead of the network."""
        show_progress = progress
        if batch_size is not None:
            self.batch_size = _positive("batch_size", batch_size)
        names = [str(p) for p in paths]
        settings = StoreSettings(mel=self.mel, patch_frames=self.patch_frames)
        failures: list[tuple[str, str]] = []

        results: Iterable[tuple[str, np.ndarray | str]] = _decode_ahead(names, settings, _positive("workers", workers))
        if show_progress:
            results = fileio.progress(results, desc="embedding files", total=len(names), unit="file")

        def decoded() -> Iterator[tuple[int, torch.Tensor]]:
            for i, (path, result) in enumerate(results):
                if isinstance(result, str):
                    failures.append((path, result))
                    log.warning("cannot embed %s: %s", path, result)
                else:
                    yield i, torch.from_numpy(result).to(self.device)

        vectors = self._pool(decoded(), len(names))
        if failures:
            log.warning("embedded %d of %d files; %d failed", len(names) - len(failures), len(names), len(failures))
        return FileEmbeddings(vectors, names, failures)

    def embed_frames(
        self, audio: AudioLike, sample_rate: int, hop_seconds: float = 0.5, centered: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings over time: ``(timestamps_s [T], float32 [T, D])``, one patch every ``hop_seconds``
        (rounded to whole frames); each timestamp is the centre of its patch.

        ``centered=True`` pads half a patch of silence at both ends, so the timestamps run from 0 to the
        end of the audio (the HEAR convention); otherwise the first is at half a patch.
        """
        if not (isinstance(hop_seconds, int | float) and hop_seconds > 0):
            raise AudioInputError(f"hop_seconds must be a positive number, got {hop_seconds!r}")
        wave = self.waveform(audio, sample_rate)
        half = self.patch_samples // 2
        if centered:
            wave = torch.nn.functional.pad(wave, (half, self.patch_samples - half))
        hop = max(1, round(hop_seconds * self.sample_rate / self.mel.hop_size))
        starts = np.arange(0, self._frame_count(wave) - self.patch_frames + 1, hop, dtype=np.int64)
        with inference(self.encoder, self.device):
            pooler = PatchPooler(self.encoder, len(starts), self.batch_size, self.device)
            done = 0
            for patches in self._patches(wave, starts):
                pooler.add(np.arange(done, done + len(patches)), patches)  # each patch its own row
                done += len(patches)
            vectors = pooler.means()
        offset = 0 if centered else half
        timestamps = (starts * self.mel.hop_size + offset) / self.sample_rate
        return timestamps, vectors


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AudioInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def _decode_one(path: str, settings: StoreSettings) -> np.ndarray | str:
    try:
        return track_audio(Path(path), settings)[0]
    except AudioDecodeError as err:
        return err.reason
    except Exception as err:  # a decoder bug on one file must not stop the others
        return f"unexpected {type(err).__name__}: {err}"


def _decode_ahead(paths: list[str], settings: StoreSettings, workers: int) -> Iterator[tuple[str, np.ndarray | str]]:
    """Decoded audio (or the reason it failed) in path order, ``workers`` threads at most 2 × workers
    files ahead (libsndfile and soxr release the GIL)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: collections.deque[tuple[str, Future[np.ndarray | str]]] = collections.deque()
        todo = iter(paths)
        for path in todo:
            pending.append((path, pool.submit(_decode_one, path, settings)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            path, future = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_decode_one, nxt, settings)))
            yield path, future.result()


def load_encoder(path: str | Path, device: str | torch.device | None = None, batch_size: int = 64) -> AudioEncoder:
    """A trained encoder ready to embed audio, from an export folder or a pre-training checkpoint.

    ``device``: ``"cuda"``, ``"cpu"``, ... (default: the GPU when present). ``batch_size``: patches per
    forward pass.

    >>> enc = mixtape.load_encoder("runs/my/encoder")
    >>> enc.embed(waveform, sample_rate=44100).shape
    (512,)
    """
    return AudioEncoder(EncoderBundle.load(path), device=device, batch_size=batch_size)
