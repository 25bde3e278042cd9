"""The Triton kernels of :mod:`pvtt.propagate.difference_kernel` (imported only where triton is; Triton
resolves the helper a kernel calls among this module's globals)."""

import triton
import triton.language as tl


@triton.jit
def scores(q_s, q_e, ks_base, ke_base, s_ks_n, s_ke_n, start, keys, cols, col_ok, qk_scale,
           block_n: tl.constexpr):
    """Both score blocks of one block of keys (base-2 logits; keys past the end at -inf)."""
    key = start + tl.arange(0, block_n)
    k_mask = col_ok[:, None] & (key[None, :] < keys)
    k_s = tl.load(ks_base + key[None, :] * s_ks_n + cols[:, None], mask=k_mask, other=0.0)
    k_e = tl.load(ke_base + key[None, :] * s_ke_n + cols[:, None], mask=k_mask, other=0.0)
    valid = key[None, :] < keys
    s_s = tl.where(valid, tl.dot(q_s, k_s) * qk_scale, float("-inf"))
    s_e = tl.where(valid, tl.dot(q_e, k_e) * qk_scale, float("-inf"))
    return s_s, s_e


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
        s_s, s_e = scores(q_s, q_e, ks_base, ke_base, s_ks_n, s_ke_n, start, keys, cols, col_ok, qk_scale,
                          block_n)
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
        s_s, s_e = scores(q_s, q_e, ks_base, ke_base, s_ks_n, s_ke_n, start, keys, cols, col_ok, qk_scale,
                          block_n)
        p_s = tl.exp2(s_s - m_s[:, None]) * inv_s[:, None]
        p_e = tl.exp2(s_e - m_e[:, None]) * inv_e[:, None]
        acc += tl.sum(tl.abs(p_s - p_e), 1)
    tl.store(out_ptr + bh * tokens + rows, acc * 0.5, mask=row_ok)
