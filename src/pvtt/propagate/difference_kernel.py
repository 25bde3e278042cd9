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
    import triton
    import triton.language as tl

    @triton.jit
    def difference_rows(qs_ptr, ks_ptr, qe_ptr, ke_ptr, out_ptr, scale, tokens, keys,
                        s_qs_b, s_qs_h, s_qs_n, s_ks_b, s_ks_h, s_ks_n,
                        s_qe_b, s_qe_h, s_qe_n, s_ke_b, s_ke_h, s_ke_n,
                        heads: tl.constexpr, dim: tl.constexpr, dim_p: tl.constexpr,
                        block_m: tl.constexpr, block_n: tl.constexpr):
        row_block = tl.program_id(0)
        bh = tl.program_id(1)
        b = bh // heads
        h = bh % heads
        rows = row_block * block_m + tl.arange(0, block_m)
        cols = tl.arange(0, dim_p)
        row_ok = rows < tokens
        col_ok = cols < dim
        q_mask = row_ok[:, None] & col_ok[None, :]
        q_s = tl.load(qs_ptr + b * s_qs_b + h * s_qs_h + rows[:, None] * s_qs_n + cols[None, :], mask=q_mask, other=0.0)
        q_e = tl.load(qe_ptr + b * s_qe_b + h * s_qe_h + rows[:, None] * s_qe_n + cols[None, :], mask=q_mask, other=0.0)
        ks_base = ks_ptr + b * s_ks_b + h * s_ks_h
        ke_base = ke_ptr + b * s_ke_b + h * s_ke_h
        # scores in base 2: exp(x) = exp2(x * log2(e))
        qk_scale = scale * 1.4426950408889634
        m_s = tl.full([block_m], float("-inf"), tl.float32)
        m_e = tl.full([block_m], float("-inf"), tl.float32)
        l_s = tl.zeros([block_m], tl.float32)
        l_e = tl.zeros([block_m], tl.float32)
        for start in range(0, keys, block_n):  # pass 1: row maximum and sum of both softmaxes
            key = start + tl.arange(0, block_n)
            k_mask = col_ok[:, None] & (key[None, :] < keys)
            k_s = tl.load(ks_base + key[None, :] * s_ks_n + cols[:, None], mask=k_mask, other=0.0)
            k_e = tl.load(ke_base + key[None, :] * s_ke_n + cols[:, None], mask=k_mask, other=0.0)
            valid = key[None, :] < keys
            s_s = tl.where(valid, tl.dot(q_s, k_s) * qk_scale, float("-inf"))
            s_e = tl.where(valid, tl.dot(q_e, k_e) * qk_scale, float("-inf"))
            new_s = tl.maximum(m_s, tl.max(s_s, 1))
            new_e = tl.maximum(m_e, tl.max(s_e, 1))
            l_s = l_s * tl.exp2(m_s - new_s) + tl.sum(tl.exp2(s_s - new_s[:, None]), 1)
            l_e = l_e * tl.exp2(m_e - new_e) + tl.sum(tl.exp2(s_e - new_e[:, None]), 1)
            m_s = new_s
            m_e = new_e
        inv_s = 1.0 / l_s
        inv_e = 1.0 / l_e
        acc = tl.zeros([block_m], tl.float32)
        for start in range(0, keys, block_n):  # pass 2: the normalised probabilities' L1 difference
            key = start + tl.arange(0, block_n)
            k_mask = col_ok[:, None] & (key[None, :] < keys)
            k_s = tl.load(ks_base + key[None, :] * s_ks_n + cols[:, None], mask=k_mask, other=0.0)
            k_e = tl.load(ke_base + key[None, :] * s_ke_n + cols[:, None], mask=k_mask, other=0.0)
            valid = key[None, :] < keys
            s_s = tl.where(valid, tl.dot(q_s, k_s) * qk_scale, float("-inf"))
            s_e = tl.where(valid, tl.dot(q_e, k_e) * qk_scale, float("-inf"))
            p_s = tl.exp2(s_s - m_s[:, None]) * inv_s[:, None]
            p_e = tl.exp2(s_e - m_e[:, None]) * inv_e[:, None]
            acc += tl.sum(tl.abs(p_s - p_e), 1)
        tl.store(out_ptr + bh * tokens + rows, acc * 0.5, mask=row_ok)

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
