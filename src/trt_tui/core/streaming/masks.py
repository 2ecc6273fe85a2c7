"""Valid-region masks: compare a cache only where it holds data (up to a length), as the seeds do.

A cache tensor padded to a fixed size holds garbage (or zeros) beyond its valid length; comparing it whole
reports drift that never reaches an output. The length comes from another output of the same chunk (taken
from the REFERENCE, the ground truth of what is valid) or from a constant; the valid entries are the first
or the last `length` along `axis`, per batch entry along `batch_axis` when the lengths differ.
"""

from __future__ import annotations

import numpy as np

from trt_tui.core.streaming.contract import Mask


def valid_lengths(mask: Mask, ref_outputs: dict[str, np.ndarray]) -> np.ndarray:
    if mask.length_value is not None:
        return np.array([mask.length_value], np.int64)
    return np.asarray(ref_outputs[mask.length_output]).astype(np.int64).reshape(-1)


def apply_mask(mask: Mask, ref: np.ndarray, cand: np.ndarray, ref_outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The valid region of `ref` and `cand`: a slice when one length applies, else the selected entries (1-D)."""
    size = ref.shape[mask.axis]
    lengths = np.clip(valid_lengths(mask, ref_outputs), 0, size)
    if np.all(lengths == lengths[0]) or mask.batch_axis is None:
        # one length for every batch entry (or no batch axis to tell them apart: the smallest is safe)
        n = int(lengths.min()) if lengths.size else 0
        sl = [slice(None)] * ref.ndim
        sl[mask.axis] = slice(0, n) if mask.keep == "first" else slice(size - n, size)
        return ref[tuple(sl)], cand[tuple(sl)]
    if lengths.size != ref.shape[mask.batch_axis]:
        raise ValueError(
            f"{mask.output}: {lengths.size} lengths in {mask.length_output} for {ref.shape[mask.batch_axis]} "
            f"entries along batch axis {mask.batch_axis}"
        )
    pos_shape = [1] * ref.ndim
    pos_shape[mask.axis] = size
    len_shape = [1] * ref.ndim
    len_shape[mask.batch_axis] = lengths.size
    pos = np.arange(size).reshape(pos_shape)
    lens = lengths.reshape(len_shape)
    valid = pos < lens if mask.keep == "first" else pos >= size - lens
    valid = np.broadcast_to(valid, ref.shape)
    return ref[valid], cand[valid]
