"""Key-frame extraction by feature clustering (docs/method.md §4.3, the authors' ``extract_by_feature_cluster``).

Cluster the per-frame features of a clip into k groups, then walk the frames in temporal order and keep the
first frame of each new cluster: k key frames that cover the clip's distinct looks, in temporal order.

Features are whatever the caller passes as (F, D): the paper uses VGG-16 FC features; we use our own
autoencoder's pooled latents (docs/method.md §4.3). Clustering is a small deterministic numpy k-means (k-means++
init, Lloyd iterations, ``n_init`` restarts, best inertia) because it is ~2× faster than scikit-learn's
KMeans on ≤ 48 points (docs/curriculum.md), uses no thread pool inside data-loader workers, and handles
duplicate frames exactly and without warnings. ``backend="sklearn"`` runs sklearn's
KMeans(random_state=seed) for parity with the authors.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rdtf_engine.core.errors import InputError

KS = tuple(range(3, 9))  # Table 6: k in 3..8
N_INIT = 10  # sklearn's default n_init in the authors' era
MAX_ITER = 100


def loop_frames(n_frames: int, k: int) -> list[int]:
    """k frame indices evenly spaced over one period of a looping clip, the last one excluded: i·n/k rounded down.

    A loop's last frame leads straight back to its first, so :func:`uniform_keyframes` (both ends) would put a
    1-frame step at the seam beside (n−1)/(k−1)-frame steps everywhere else; here every step, the seam's
    included, spans n/k frames — how the loop plays when cut to k frames. k > n: as ``uniform_keyframes``."""
    n, k = int(n_frames), int(k)
    if n < 1 or k < 1:
        raise InputError(f"need n_frames >= 1 and k >= 1, got n_frames={n_frames}, k={k}")
    if k > n:
        return uniform_keyframes(n, k)
    return [i * n // k for i in range(k)]


def uniform_keyframes(n_frames: int, k: int) -> list[int]:
    """k equally spaced frame indices including both ends (the --no-dual-mask arm and the fallback fill).

    Index i = round_half_up(i·(n−1)/(k−1)); distinct and increasing when k ≤ n. k = 1 → [0]. When k > n the
    clip is played ping-pong (0, 1, …, n−1, n−2, …) and its first k positions are returned, so every frame
    appears and indices repeat (same rule as ``extract_keyframes``).
    """
    n, k = int(n_frames), int(k)
    if n < 1 or k < 1:
        raise InputError(f"need n_frames >= 1 and k >= 1, got n_frames={n_frames}, k={k}")
    if k > n:
        return _pingpong_order(n, k)[:k]
    if k == 1:
        return [0]
    return [(2 * i * (n - 1) + (k - 1)) // (2 * (k - 1)) for i in range(k)]  # integer round-half-up


def _pingpong_order(n: int, k: int) -> list[int]:
    """Original indices of a clip of n frames extended by ``frames + frames[::-1][1:]`` until it has ≥ k."""
    order = list(range(n))
    while len(order) < k and n > 1:
        order = order + order[::-1][1:]
    if n == 1:  # one frame: the extension never grows; repeat it
        order = [0] * max(k, 1)
    return order


def _kmeans_numpy(x: np.ndarray, k: int, seed: int, n_init: int = N_INIT) -> np.ndarray:
    """Labels (n,) of the best of ``n_init`` k-means runs on x (n, D), all seeded from ``seed``.

    Identical rows (ping-pong copies, frozen frames) are merged first and clustered as one weighted point, so
    duplicates always share a label (no float ties) and fewer than k distinct rows need no k-means at all.
    """
    uniq, inverse, weight = np.unique(x, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    u = uniq.shape[0]
    if u <= k:  # every distinct frame is its own cluster; the caller fills the missing ones
        return inverse
    w = weight.astype(np.float64)  # (u,) multiplicity of each distinct row
    sq = np.einsum("ud,ud->u", uniq, uniq)  # (u,) squared norms, reused by every distance computation

    def sqdist(c: np.ndarray) -> np.ndarray:  # (m, D) centres → (u, m) squared distances
        return np.maximum(sq[:, None] - 2 * uniq @ c.T + np.einsum("md,md->m", c, c)[None], 0.0)

    rng = np.random.default_rng(seed)
    best_labels, best_inertia = None, np.inf
    for _ in range(n_init):
        # weighted k-means++ seeding: each next centre drawn ∝ multiplicity × squared distance to the nearest
        # chosen one (inverse-CDF draw: cheaper than rng.choice(p=...)). u > k distinct rows, so total > 0.
        idx = [int(rng.choice(u, p=w / w.sum()))]
        d2 = sqdist(uniq[idx])[:, 0]  # (u,)
        for _ in range(1, k):
            cdf = np.cumsum(w * d2)
            j = min(u - 1, int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")))
            idx.append(j)
            d2 = np.minimum(d2, sqdist(uniq[j : j + 1])[:, 0])
        centres = uniq[idx].copy()  # (k, D)
        labels = None
        for _ in range(MAX_ITER):
            dist = sqdist(centres)  # (u, k)
            new = dist.argmin(axis=1)  # (u,) ties go to the lowest centre index
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            onehot = (labels[:, None] == np.arange(k)[None]) * w[:, None]  # (u, k) weighted membership
            counts = onehot.sum(axis=0)
            nonempty = counts > 0
            centres[nonempty] = (onehot.T @ uniq)[nonempty] / counts[nonempty, None]
            # Empty cluster: move its centre onto the point farthest from its own centre (as sklearn does), so
            # all k clusters are used (there are more than k distinct points here).
            far = np.argsort(-dist[np.arange(u), labels], kind="stable")
            for c, p in zip(np.flatnonzero(~nonempty), far):
                centres[c] = uniq[p]
        dist = sqdist(centres)
        labels = dist.argmin(axis=1)
        inertia = float((w * dist[np.arange(u), labels]).sum())
        if inertia < best_inertia:  # strict: the first of equally good runs wins
            best_labels, best_inertia = labels, inertia
    assert best_labels is not None
    return best_labels[inverse]


def _kmeans_sklearn(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # duplicate frames → "fewer distinct clusters"; the fill below handles it
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(n_clusters=k, random_state=seed, n_init=N_INIT).fit(x).labels_


def extract_keyframes(features: np.ndarray, k: int, seed: int = 42, backend: str = "numpy") -> list[int]:
    """k key-frame indices of a clip from its per-frame features (F, D).

    Returns indices into the ORIGINAL clip, in temporal order. F ≥ k: exactly k distinct increasing indices.
    F < k: the clip is first extended ping-pong (``frames + frames[::-1][1:]``, repeated until ≥ k frames) as
    the authors do; the extended copies have identical features, so clustering finds only the distinct frames
    and the rest is filled (below). The result follows the bounce, e.g. F=3, k=4 → [0, 1, 2, 1]: indices
    repeat and may go down. Fill: when fewer than k clusters are first-visited (duplicate/identical frames),
    the missing positions are taken from ``uniform_keyframes`` over the (extended) clip, then the remaining
    positions in order; the result is sorted by position.
    """
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 1 or feats.shape[1] < 1:
        raise InputError(f"features must be (F, D) with F, D >= 1, got shape {feats.shape}")
    if int(k) < 1:
        raise InputError(f"k must be >= 1, got {k}")
    if not np.isfinite(feats).all():
        raise InputError("features contain NaN or inf")
    if backend not in ("numpy", "sklearn"):
        raise InputError(f"backend must be 'numpy' or 'sklearn', got {backend!r}")
    k = int(k)
    order = _pingpong_order(feats.shape[0], k)  # extended position → original index
    x = feats[order]  # (P, D), P >= k
    if k == 1:
        labels = np.zeros(len(order), dtype=np.int64)
    elif backend == "numpy":
        labels = _kmeans_numpy(x, k, seed)
    else:
        labels = _kmeans_sklearn(x, k, seed)
    seen: set[int] = set()
    chosen: list[int] = []  # positions in the extended clip, increasing
    for pos, lab in enumerate(labels.tolist()):
        if lab not in seen:
            seen.add(lab)
            chosen.append(pos)
    if len(chosen) < k:
        taken = set(chosen)
        extra = [p for p in uniform_keyframes(len(order), k) + list(range(len(order))) if p not in taken]
        for p in extra:
            if len(taken) == k:
                break
            taken.add(p)
        chosen = sorted(taken)
    return [order[p] for p in chosen]


def extract_all(
    features: np.ndarray, ks: Iterable[int] = KS, seed: int = 42, backend: str = "numpy"
) -> dict[int, list[int]]:
    """{k: extract_keyframes(features, k)} for every k, like the authors' precomputed ``keyframe_idx``."""
    return {int(k): extract_keyframes(features, int(k), seed, backend) for k in ks}
