"""A small synthetic keyword-spotting task for the zoo's LSTM model (tools/make_models.py).

Clips are 1 s at 8 kHz. Four "keywords" are tone patterns at a random base pitch f0
(400-900 Hz), length and position: `up` (a chirp f0 -> 2 f0), `down` (2 f0 -> f0), `beep2`
(two 120 ms beeps at f0) and `trill` (f0 and 1.5 f0 alternating every 50 ms); `unknown` is a
steady tone or a two-tone chord at a random pitch (250-3000 Hz) and `silence` is noise only.
Every clip gets white and low-passed noise at a random SNR of -6 to 20 dB (silence: noise alone).

Features are MFCC-like, in numpy: 49 frames of 40 ms every 20 ms (Hann window, 512-point
FFT), a 20-band triangular mel filterbank over 0-4 kHz, log, an orthonormal DCT-II to 10
coefficients, standardised with fixed constants and rounded to 1/1024 (so that the last-bit
differences of another host's FFT do not change the data). Input [49, 10], like the
MLPerf Tiny DS-CNN's 49x10 MFCC.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 8000
CLIP = SAMPLE_RATE
FRAME, HOP, FFT = 320, 160, 512
FRAMES = (CLIP - FRAME) // HOP + 1  # 49
MELS, COEFFS = 20, 10
CLASSES = ("silence", "unknown", "up", "down", "beep2", "trill")
FEATURE_MEAN, FEATURE_STD = 1.5, 5.0  # fixed standardisation (about the data's)
GRID = 1024.0


def _mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def mel_filterbank() -> np.ndarray:
    """[MELS, FFT // 2 + 1] triangular filters evenly spaced on the mel scale."""
    edges = 700.0 * (10 ** (np.linspace(_mel(0.0), _mel(SAMPLE_RATE / 2), MELS + 2) / 2595.0)
                     - 1.0)
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1)
    bank = np.zeros((MELS, freqs.size))
    for m in range(MELS):
        lo, mid, hi = edges[m:m + 3]
        bank[m] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0,
                          None)
    return bank


def dct_matrix() -> np.ndarray:
    """Orthonormal DCT-II, first COEFFS rows, [COEFFS, MELS]."""
    n = np.arange(MELS)
    d = np.cos(np.pi / MELS * (n + 0.5)[None, :] * np.arange(COEFFS)[:, None])
    d *= np.sqrt(2.0 / MELS)
    d[0] /= np.sqrt(2.0)
    return d


def features(clip: np.ndarray) -> np.ndarray:
    """MFCC-like features [FRAMES, COEFFS] (float32) of one clip."""
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(FRAMES)[:, None]
    frames = clip[idx] * np.hanning(FRAME)[None, :]
    power = np.abs(np.fft.rfft(frames, FFT, axis=1)) ** 2
    logmel = np.log(power @ mel_filterbank().T + 1e-6)
    mfcc = (logmel @ dct_matrix().T - FEATURE_MEAN) / FEATURE_STD
    return (np.round(mfcc * GRID) / GRID).astype(np.float32)


def _tone(freq: np.ndarray, amplitude: float) -> np.ndarray:
    """A tone following the instantaneous frequency `freq` (Hz per sample)."""
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    ramp = np.minimum(1.0, np.minimum(np.arange(freq.size), np.arange(freq.size)[::-1]) / 80.0)
    return amplitude * np.sin(phase) * ramp


def _keyword(label: str, rng: np.random.Generator) -> np.ndarray:
    f0 = rng.uniform(400.0, 900.0)
    n = int(rng.uniform(0.3, 0.5) * SAMPLE_RATE)
    t = np.arange(n)
    if label == "up":
        return _tone(f0 * (1 + t / n), 1.0)
    if label == "down":
        return _tone(f0 * (2 - t / n), 1.0)
    if label == "beep2":
        beep = int(0.12 * SAMPLE_RATE)
        gap = np.zeros(int(0.08 * SAMPLE_RATE))
        return np.concatenate([_tone(np.full(beep, f0), 1.0), gap, _tone(np.full(beep, f0), 1.0)])
    if label == "trill":
        step = int(0.05 * SAMPLE_RATE)
        return _tone(np.where((t // step) % 2 == 0, f0, 1.5 * f0), 1.0)
    if label == "unknown":
        f = rng.uniform(250.0, 3000.0)
        tone = _tone(np.full(n, f), 1.0)
        if rng.random() < 0.5:
            tone = tone + _tone(np.full(n, f * rng.uniform(1.1, 1.9)), 0.7)
        return tone
    return np.zeros(0)


def clip_of(label: str, rng: np.random.Generator) -> np.ndarray:
    """One 1 s clip of class `label`."""
    clip = np.zeros(CLIP)
    word = _keyword(label, rng)
    if word.size:
        start = int(rng.integers(0, CLIP - word.size))
        clip[start:start + word.size] = word
    white = rng.standard_normal(CLIP)
    low = np.convolve(rng.standard_normal(CLIP), np.ones(16) / 4.0, mode="same")
    noise = white + low
    if word.size:
        snr_db = rng.uniform(-6.0, 20.0)
        gain = np.sqrt(np.mean(word ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    else:
        gain = rng.uniform(0.05, 0.5)
    return (clip + gain * noise) * rng.uniform(0.2, 1.0)


def dataset(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` clips' features [count, FRAMES, COEFFS] (float32) and labels (int64), the
    classes in turn."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(CLASSES)
    x = np.stack([features(clip_of(CLASSES[k], rng)) for k in labels])
    return x, labels.astype(np.int64)
