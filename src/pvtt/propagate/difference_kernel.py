"""I2VEdit's attention difference ``D`` as one fused Triton kernel that never writes the attention matrices.

``D = ½ Σ_keys |softmax(Q_s K_sᵀ·scale) − softmax(Q_e K_eᵀ·scale)|`` per query row. Written with torch ops
(even compiled) it materialises both probability matrices — 16 frames x 5 heads x 9216² floats at SVD's top
level — and its cost is the memory traffic over them. This kernel works like flash attention, in two passes
over the keys of a block of query rows:

1. the running row maximum and sum of ``exp`` of both score matrices (online softmax);
2. the scores again, now normalised with the final maximum and sum, and the L1 difference accumulated.

Nothing of size ``tokens x keys`` leaves the chip: the kernel reads Q and K (bf16) and writes one float per
row and head, so it is bound by its four ``Q Kᵀ`` products and the exponentials, not by memory.

``triton`` comes with CUDA builds of torch. The tests run the same kernel on the CPU through Triton's
interpreter (``TRITON_INTERPRET=1``), against the torch formula.
"""

from __future__ import annotations

from typing import Any


def available() -> bool:
    """Whether the kernel can run here: triton importable (CUDA torch builds ship it)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


_kernel: Any = None


def _build() -> Any:
    from pvtt.propagate.difference_triton import difference_rows

    return difference_rows


def attention_difference(q_s: Any, k_s: Any, q_e: Any, k_e: Any, block_m: int = 64, block_n: int = 64,
                         num_warps: int = 4, num_stages: int = 2) -> Any:
    """``D`` per frame and query token, mean over heads: ``(frames, tokens)`` float32.

    ``q_*`` ``(frames, heads, tokens, dim)``, ``k_*`` ``(frames, heads, keys, dim)``, any float dtype (bf16 on
    the GPU: products in float32 as tensor-core dots accumulate them), the last dimension contiguous. Not
    clamped: the caller clamps, as the torch path does."""
    import torch
    import triton

    global _kernel
    if _kernel is None:
        _kernel = _build()
    frames, heads, tokens, dim = q_s.shape
    keys = k_s.shape[2]
    if k_e.shape[2] != keys or q_e.shape != q_s.shape:
        raise ValueError(f"attention_difference: shapes differ: q {tuple(q_s.shape)} / {tuple(q_e.shape)}, "
                         f"k {tuple(k_s.shape)} / {tuple(k_e.shape)}")
    q_s, k_s, q_e, k_e = (x if x.stride(-1) == 1 else x.contiguous() for x in (q_s, k_s, q_e, k_e))
    out = torch.empty(frames * heads, tokens, device=q_s.device, dtype=torch.float32)
    grid = (triton.cdiv(tokens, block_m), frames * heads)
    _kernel[grid](q_s, k_s, q_e, k_e, out, dim ** -0.5, tokens, keys,
                  *q_s.stride()[:3], *k_s.stride()[:3], *q_e.stride()[:3], *k_e.stride()[:3],
                  heads=heads, dim=dim, dim_p=max(16, triton.next_power_of_2(dim)),
                  block_m=block_m, block_n=block_n, num_warps=num_warps, num_stages=num_stages)
    return out.view(frames, heads, tokens).mean(dim=1)
