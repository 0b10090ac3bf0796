"""Waveform in, embedding out, as one traceable module: the log-mel front end inside the graph.

The Python API computes log-mel with ``torch.fft.rfft`` (``mixtape.audio.log_mel_batch``); an ONNX
graph cannot carry that everywhere, so here the windowed DFT is a strided ``conv1d`` whose kernels are
the window times the cosine and sine basis (the classic STFT-as-convolution), followed by the same
power, mel filterbank, ``log10(1 + m x)`` and float16 rounding as the feature store. Patches and the
track mean follow ``covering_starts``: every non-overlapping patch, plus one ending at the end when the
length is not a multiple, whose weight is computed from the frame count at run time so the graph has
no data-dependent branch. Input: ``[N, samples]`` mono at the encoder's rate, at least one patch long
(``min_samples``; the Python API loops shorter audio, a graph cannot).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mixtape.audio.mel import MelConfig, frame_window, mel_filterbank


class WaveformEncoder(nn.Module):
    """``[N, samples]`` → ``[N, D]``: log-mel front end + encoder + mean over the covering patches."""

    def __init__(self, encoder: nn.Module, mel: MelConfig, patch_frames: int) -> None:
        super().__init__()
        self.encoder, self.mel, self.patch_frames = encoder, mel, patch_frames
        n = mel.frame_size
        k = np.arange(mel.n_bins)[:, None] * np.arange(n)[None, :]
        window = frame_window(mel)
        basis = np.concatenate([np.cos(2 * np.pi * k / n), -np.sin(2 * np.pi * k / n)]) * window  # [2 * n_bins, n]
        self.dft: torch.Tensor
        self.filterbank: torch.Tensor
        self.register_buffer("dft", torch.as_tensor(basis[:, None, :], dtype=torch.float32))
        self.register_buffer("filterbank", torch.as_tensor(mel_filterbank(mel), dtype=torch.float32))

    @property
    def min_samples(self) -> int:
        return self.mel.samples_for(self.patch_frames)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """``[N, samples]`` → ``[N, n_mels, frames]``, rounded to float16 values as a feature store keeps them."""
        x = waveform[:, None, :]
        if self.mel.center:
            half = self.mel.frame_size // 2
            x = nn.functional.pad(x, (half, half))
        spectrum = nn.functional.conv1d(x, self.dft, stride=self.mel.hop_size)  # [N, 2 * n_bins, frames]
        real, imag = spectrum.chunk(2, dim=1)
        mel = torch.matmul(self.filterbank, real * real + imag * imag)
        return (torch.log1p(mel * self.mel.log_multiplier) / math.log(10.0)).half().float()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        frames = self.log_mel(waveform)  # [N, M, T]
        n, m, t, p = frames.shape[0], frames.shape[1], frames.shape[2], self.patch_frames
        n_full = t // p  # sizes stay symbolic when traced, so the graph takes any length
        full = frames[:, :, : n_full * p].reshape(n, m, n_full, p).permute(0, 2, 1, 3).reshape(-1, m, p)
        out = self.encoder(torch.cat([full, frames[:, :, -p:]]))
        full_out, end_out = out[: n * n_full].reshape(n, n_full, -1), out[n * n_full :]
        # the end patch counts only when the frames are not a whole number of patches (else it repeats the last)
        count = torch.ones_like(frames[0, 0]).sum()
        whole = torch.floor(count / p)
        end_weight = (count - whole * p > 0).to(out.dtype)
        return (full_out.sum(dim=1) + end_weight * end_out) / (whole + end_weight)
