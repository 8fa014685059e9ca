"""The CPU GEMM kernel held to the float64 oracle: shapes, strides, dtypes, epilogue, edge values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from nbmp import dtypes, testing
from nbmp.backend import reference
from nbmp.backend.cpu import amx, gemm, simd, threads
from nbmp.backend.cpu import matmul as backend_matmul

HALVES = ["float16", "bfloat16"]
real_parallel = threads.parallel
INPUTS = ["float16", "bfloat16", "float32"]


def _operand(rng, shape, dtype, layout, special=0.0):
    """A `dtype` matrix of `shape` in `layout`: 'C', 'F' (a transposed view), 'strided' (every
    other column of a wider array) or 'reversed' (negative strides). A fraction `special` of the
    entries is replaced by edge values (inf, nan, subnormals, and huge values: fp16's largest
    finite value, 2**60 for the wider types, whose products still fit in float32)."""
    dt = dtypes.as_numpy(dtype)
    values = rng.standard_normal(shape)
    if special:
        info = dtypes.finfo(dtype)
        huge = info.max if dtype == "float16" else 2.0**60
        edges = np.array([np.inf, -np.inf, np.nan, huge, -huge, info.smallest_subnormal,
                          -3 * info.smallest_subnormal, 0.0])
        mask = rng.random(shape) < special
        values[mask] = rng.choice(edges, mask.sum())
    x = values.astype(dt)
    if layout == "F":
        return np.ascontiguousarray(x.T).T
    if layout == "strided":
        wide = np.zeros((shape[0], 2 * shape[1] + 1), dt)
        wide[:, 1::2] = x
        return wide[:, 1::2]
    if layout == "reversed":
        return np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    return x


def _check(got, a, b, out_dtype, bias=None, activation=None):
    """`got` within the float32-accumulation bound of the float64 oracle, epilogue included."""
    exact = testing.matmul_oracle(a, b)
    bound = testing.matmul_bound(a, b, "float32")
    if bias is not None or activation not in (None, "linear"):
        pre = exact + (0 if bias is None else bias.astype(np.float64))
        exact = reference.activation(pre, activation)
        # the bias add and the float32 activation each cost a few float32 ulps; gelu's slope < 1.13
        bound = 1.13 * bound + 8 * testing.ACCUMULATION_EPS * (np.abs(pre) + np.abs(exact))
    bound = bound + testing.rounding_bound(exact, out_dtype)
    assert got.dtype == dtypes.as_numpy(out_dtype)
    testing.assert_within_bound(got, exact, bound, "gemm", dtype=out_dtype)


@given(m=st.integers(0, 40), k=st.integers(0, 600), n=st.integers(0, 40),
       dtype=st.sampled_from(INPUTS), out=st.sampled_from(["same", "float32"]),
       layout_a=st.sampled_from(["C", "F", "strided", "reversed"]),
       layout_b=st.sampled_from(["C", "F", "strided", "reversed"]),
       seed=st.integers(0, 2**32 - 1))
def test_gemm_matches_oracle_for_any_shape_and_layout(m, k, n, dtype, out, layout_a, layout_b, seed):
    rng = np.random.default_rng(seed)
    a = _operand(rng, (m, k), dtype, layout_a)
    b = _operand(rng, (k, n), dtype, layout_b)
    out_dtype = dtype if out == "same" else out
    _check(gemm.gemm(a, b, dtypes.as_numpy(out_dtype)), a, b, out_dtype)


@given(dtype=st.sampled_from(INPUTS), special=st.sampled_from([0.02, 0.2]),
       shape=st.tuples(st.integers(1, 20), st.integers(1, 300), st.integers(1, 40)),
       seed=st.integers(0, 2**32 - 1))
def test_gemm_edge_values(dtype, special, shape, seed):
    """inf, nan, the largest finite value and subnormals propagate as in exact arithmetic."""
    rng = np.random.default_rng(seed)
    m, k, n = shape
    a = _operand(rng, (m, k), dtype, "C", special)
    b = _operand(rng, (k, n), dtype, "F", special)
    _check(gemm.gemm(a, b, dtypes.as_numpy(dtype)), a, b, dtype)


@pytest.mark.parametrize("dtype", INPUTS)
@pytest.mark.parametrize("activation", [None, "linear", "relu", "sigmoid", "tanh", "gelu"])
# 9, 70, 40, 37 columns: the epilogue's vectors of 16 and the rest one by one; 1100 deep: over
# several blocks of k, the last adding the partial sums
@pytest.mark.parametrize("shape", [(7, 5, 9), (50, 300, 70), (130, 260, 40), (20, 1100, 37)])
def test_fused_bias_and_activation(dtype, activation, shape):
    rng = np.random.default_rng(1)
    m, k, n = shape
    a, b = _operand(rng, (m, k), dtype, "C"), _operand(rng, (k, n), dtype, "C")
    bias = rng.standard_normal(n).astype(np.float32)
    for out_dtype in {dtype, "float32"}:
        got = gemm.gemm(a, b, dtypes.as_numpy(out_dtype), bias=bias, activation=activation)
        _check(got, a, b, out_dtype, bias, activation)


@pytest.mark.parametrize("dtype", HALVES)
def test_long_dot_of_ones_is_exact(dtype):
    """10,000 ones sum to 10000: an fp16 accumulator would stop at 2048."""
    ones = np.ones((3, 10_000), dtypes.as_numpy(dtype))
    assert gemm.gemm(ones, ones.T, np.float32).tolist() == [[10_000.0] * 3] * 3
    assert gemm.gemm(ones[:1], ones[:1].T, np.float16).item() == 10_000


def test_fp16_sums_past_65504_overflow_only_at_the_final_rounding():
    a = np.full((1, 4), 65504, np.float16)
    b = np.array([[1.0], [1.0], [-1.0], [-1.0]], np.float16)
    assert gemm.gemm(a, b, np.float16).item() == 0  # 65504 + 65504 is fine in float32
    assert gemm.gemm(a, np.ones((4, 1), np.float16), np.float16).item() == np.inf
    assert gemm.gemm(a, np.ones((4, 1), np.float16), np.float32).item() == 4 * 65504


@pytest.mark.parametrize("n", [1, 17])  # the element path of the epilogue; a vector and a tail
def test_fused_relu_of_a_negative_zero_sum_is_plus_zero(n):
    # a tiny negative product rounds to -0.0 in float32: relu gives +0.0, as NumPy's maximum
    a, b = np.full((8, 1), -1e-30, np.float32), np.full((1, n), 1e-30, np.float32)
    got = gemm.gemm(a, b, np.float32, activation="relu")
    assert (got == 0).all() and not np.signbit(got).any()


@pytest.mark.parametrize("dtype", INPUTS)
def test_empty_and_zero_depth(dtype):
    dt = dtypes.as_numpy(dtype)
    assert gemm.gemm(np.ones((0, 3), dt), np.ones((3, 4), dt), dt).shape == (0, 4)
    assert gemm.gemm(np.ones((2, 3), dt), np.ones((3, 0), dt), dt).shape == (2, 0)
    got = gemm.gemm(np.ones((2, 0), dt), np.ones((0, 3), dt), dt, bias=np.array([1, -2, 3], np.float32),
                    activation="relu")
    assert got.tolist() == [[1.0, 0.0, 3.0]] * 2


@pytest.mark.parametrize("dtype", INPUTS)
def test_packed_weights_give_the_same_result(dtype):
    rng = np.random.default_rng(2)
    a, b = _operand(rng, (70, 300), dtype, "C"), _operand(rng, (300, 50), dtype, "F")
    packed = gemm.pack_b(b)
    assert "shape=(300, 50)" in repr(packed)
    np.testing.assert_array_equal(gemm.gemm(a, packed, np.float32), gemm.gemm(a, b, np.float32))


@pytest.mark.parametrize("dtype", INPUTS)
def test_threads_split_by_rows_or_by_columns_agree_with_one_thread(dtype, use_threads, every_call_threaded):
    """Row slabs share one packed ``b``; column slabs pack their own columns, block by block."""
    rng = np.random.default_rng(3)
    k, n = 3 * gemm.KC - 70, 2 * gemm.NR + 5  # several blocks of k, 3 panels (a ragged last one)
    for m, by_rows in ((13, False), (300, True)):
        a, b = _operand(rng, (m, k), dtype, "strided"), _operand(rng, (k, n), dtype, "C")
        use_threads(2)
        assert gemm._slabs_share_b(m, n) == by_rows
        got = gemm.gemm(a, b, dtypes.as_numpy(dtype))
        use_threads(1)
        np.testing.assert_array_equal(got, gemm.gemm(a, b, dtypes.as_numpy(dtype)))
        _check(got, a, b, dtype)


@given(m=st.integers(1, 9), k=st.integers(1, 300), n=st.integers(1, 2 * gemm.NR + 9),
       dtype=st.sampled_from(INPUTS), out=st.sampled_from(["same", "float32"]),
       layout_a=st.sampled_from(["C", "F"]), layout_b=st.sampled_from(["C", "rows", "F", "reversed"]),
       activation=st.sampled_from([None, "relu", "gelu"]), with_bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_few_rows_read_b_in_place_within_the_bound(m, k, n, dtype, out, layout_a, layout_b, activation,
                                                   with_bias, seed):
    rng = np.random.default_rng(seed)
    special = 0.05 if activation is None else 0.0  # (the oracle's gelu of inf warns)
    a = _operand(rng, (m, k), dtype, layout_a, special)
    if layout_b == "rows":  # rows apart, columns contiguous: read in place
        b = _operand(rng, (k, n + 7), dtype, "C", special)[:, 3:n + 3]
    else:  # read in place ("C"), or packed: a transposed or reversed b
        b = _operand(rng, (k, n), dtype, layout_b, special)
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None
    out_dtype = dtype if out == "same" else out
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gemm, "SKINNY_M", 9)  # the kernel takes any number of rows, four at a time
        got = gemm.gemm(a, b, dtypes.as_numpy(out_dtype), bias, activation)
    _check(got, a, b, out_dtype, bias, activation)


def test_few_rows_take_their_path_threaded_or_not(monkeypatch, use_threads, every_call_threaded):
    """Up to SKINNY_M rows and an unpacked b with contiguous rows: b read in place, on every
    thread, the same result as on one (a bf16 subnormal included: nothing there flushes it);
    more rows, a PackedB or a transposed b: packed."""
    calls = []
    monkeypatch.setattr(threads, "parallel", lambda share, *args, nthreads=None:
                        calls.append(share) or real_parallel(share, *args, nthreads=nthreads))
    rng = np.random.default_rng(5)
    for dtype in INPUTS:
        a = _operand(rng, (gemm.SKINNY_M, 700), dtype, "F")
        b = _operand(rng, (700, 3 * gemm.NR + 5), dtype, "C")
        if dtype == "bfloat16":
            b[3, 5] = dtypes.finfo("bfloat16").smallest_subnormal
        use_threads(2)
        got = gemm.gemm(a, b, np.float32)
        use_threads(1)
        np.testing.assert_array_equal(got, gemm.gemm(a, b, np.float32))
        _check(got, a, b, "float32")
        assert calls == [gemm._few_rows_thread] * 2
        calls.clear()
        gemm.gemm(np.vstack([a, a[:1]]), b, np.float32)
        gemm.gemm(a, gemm.PackedB(b), np.float32)
        gemm.gemm(a, np.asfortranarray(b), np.float32)  # a transposed b is packed (in blocks)
        assert gemm._few_rows_thread not in calls
        calls.clear()


#: The bf16 layouts that flush subnormals (vdpbf16ps pairs, AMX tiles) this CPU runs, fastest first.
LOSSY = [layout for layout in gemm._layouts(dtypes.bfloat16) if layout]
needs_lossy = pytest.mark.skipif(not LOSSY, reason="the CPU has neither AMX nor AVX512-BF16 (vdpbf16ps)")
needs_amx = pytest.mark.skipif(not amx.available(), reason="no AMX tiles here (or the OS did not grant them)")


def test_bf16_subnormal_test_is_exact_over_all_bit_patterns():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16)
    expected = ((bits & 0x7F80) == 0) & ((bits & 0x7F) != 0)
    assert expected.sum() == 2 * 127
    np.testing.assert_array_equal([gemm._bf16_key(v) < gemm.SUBNORMAL_KEYS for v in bits], expected)
    np.testing.assert_array_equal(_vector_marks(bits), expected)


@njit
def _vector_marks(bits):
    """Per 16-bit value of `bits` (int16, a multiple of 2 * WIDTH long), whether
    ``vmark_bf16_subnormals`` marks it when it comes through ``vload_pairs`` alone."""
    found = np.zeros(bits.size, np.bool_)
    lanes = simd.WIDTH
    for at in range(0, bits.size, 2 * lanes):
        for lane in range(2 * lanes):  # one value at a time, the rest of the vector zero
            one = np.zeros(2 * lanes, np.int16)
            one[lane] = bits[at + lane]
            marks = simd.vmark_bf16_subnormals(simd.vzero(), simd.vload_pairs(one, 0, lanes))
            found[at + lane] = simd.vany_bits(marks)
    return found


@needs_lossy
@pytest.mark.parametrize("layout", ["C", "F", "reversed"])
def test_bf16_pair_packers_find_a_subnormal_anywhere(layout):
    tiny = dtypes.finfo("bfloat16").smallest_subnormal
    for where in [None, (0, 0), (1, 3), (2, 4)]:
        block = np.ones((3, 5), dtypes.bfloat16)
        if where is not None:
            block[where] = -tiny
        views = {"C": block, "F": np.asfortranarray(block), "reversed": block[::-1, ::-1].copy()[::-1, ::-1]}
        view = views[layout]
        for pairs in LOSSY:  # as b
            assert gemm.PackedB(view, pairs=pairs).pairs == (pairs if where is None else False)
        slots = np.empty(gemm.MR * 3, np.float32)  # one sliver, 5 of k in 3 pairs
        assert gemm._pack_a_pairs(*gemm.strided(view), 3, 0, 1, 0, 5, slots) == (where is not None)  # as a
        slots = np.full(gemm.BAND * 16, np.nan, np.float32)  # one band, 5 of k in a tile's 16 pairs
        found = gemm._pack_rows_pairs(*gemm.strided(view), 3, 0, gemm.BAND, 0, 5, 16, slots)
        assert found == (where is not None)
        packed = slots.view(np.int16).reshape(gemm.BAND, 32)
        if where is None:  # the rows, then zeros: past k, and past the 3 rows of the matrix
            np.testing.assert_array_equal(packed[:3, :5], view.view(np.int16))
            assert not packed[:3, 5:].any() and not packed[3:].any()


@pytest.mark.parametrize("dtype", INPUTS)
@pytest.mark.parametrize("k, n", [(67, 37), (64, 64), (1100, 70), (33, 15), (15, 40)])
def test_packing_a_transposed_b_gives_the_panels_of_a_copy(dtype, k, n):
    """A transposed b is packed in transposed blocks (``simd.transpose_block``) plus element
    tails (odd k, columns past the last block): its panels equal those of a C-ordered copy."""
    b = np.random.default_rng(k).standard_normal((n, k)).astype(dtypes.as_numpy(dtype)).T
    for pairs in [False, *LOSSY]:
        if pairs and dtype != "bfloat16":
            continue
        np.testing.assert_array_equal(gemm.PackedB(b, pairs=pairs).data.view(np.int32),
                                      gemm.PackedB(b.copy(), pairs=pairs).data.view(np.int32))


@pytest.mark.parametrize("dtype", INPUTS)
@pytest.mark.parametrize("m, k, p0", [(96, 67, 0), (40, 33, 3), (17, 1100, 16), (5, 40, 1), (96, 15, 0)])
def test_packing_a_transposed_a_gives_the_slivers_of_a_copy(dtype, m, k, p0):
    a = np.random.default_rng(m + k).standard_normal((k, m)).astype(dtypes.as_numpy(dtype)).T
    slivers, kc = -(-m // gemm.MR), k - p0
    packers = [(gemm._pack_a, kc)] + ([(gemm._pack_a_pairs, (kc + 1) // 2)] if dtype == "bfloat16" else [])
    for pack, steps in packers:
        got, want = (np.full(slivers * gemm.MR * steps, np.nan, np.float32) for _ in range(2))
        pack(*gemm.strided(a), m, 0, slivers, p0, kc, got)
        pack(*gemm.strided(a.copy()), m, 0, slivers, p0, kc, want)
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


@needs_lossy
@pytest.mark.parametrize("pairs", LOSSY)
def test_bf16_pair_packers_of_transposed_operands_find_a_subnormal_in_blocks_and_tails(pairs):
    tiny = dtypes.finfo("bfloat16").smallest_subnormal
    k, n = 2 * 2 * simd.BLOCK + 3, 2 * simd.BLOCK + 5
    for where in [None, (0, 0), (2 * simd.BLOCK + 7, simd.BLOCK + 1), (k - 1, 3), (5, n - 1)]:
        b = np.ones((n, k), dtypes.bfloat16).T
        if where is not None:
            b[where] = -tiny
        assert gemm.PackedB(b, pairs=pairs).pairs == (pairs if where is None else False), where
        a = np.ascontiguousarray(b).T  # (n, k) with rows adjacent: a transposed a, the same values
        slivers = -(-n // gemm.MR)
        slots = np.empty(slivers * gemm.MR * ((k + 1) // 2), np.float32)
        assert gemm._pack_a_pairs(*gemm.strided(a), n, 0, slivers, 0, k, slots) == (where is not None)


@needs_lossy
@pytest.mark.parametrize("pairs", LOSSY)
def test_bf16_pair_packer_of_b_finds_a_subnormal_in_its_vectors_and_tails(pairs):
    """Rows of b are zipped a vector at a time (subnormals marked in the vectors), the columns
    past the last whole vector and an odd last row of k one value at a time."""
    tiny = dtypes.finfo("bfloat16").smallest_subnormal
    k, n = 7, 2 * gemm.NR + simd.WIDTH + 5
    for where in [None, (0, 0), (1, simd.WIDTH + 3), (4, gemm.NR + 2 * simd.WIDTH - 1), (5, n - 1), (6, 3)]:
        b = np.ones((k, n), dtypes.bfloat16)
        if where is not None:
            b[where] = -tiny
        assert gemm.PackedB(b, pairs=pairs).pairs == (pairs if where is None else False), where


@needs_lossy
@pytest.mark.parametrize("pairs", LOSSY)
def test_bf16_products_run_on_pairs_or_tiles_where_the_cpu_has_them(pairs):
    rng = np.random.default_rng(7)
    b = _operand(rng, (301, 70), "bfloat16", "F")
    packed = gemm.PackedB(b, pairs=pairs)
    assert packed.pairs == pairs and {True: "bf16 pairs", gemm.TILES: "AMX tiles"}[pairs] in repr(packed)
    assert gemm.pack_b(b).pairs == LOSSY[0]  # the fastest, unless asked
    a = _operand(rng, (50, 301), "bfloat16", "strided")  # odd depth: a zero-padded last pair
    for out in ("bfloat16", "float32"):
        _check(gemm.gemm(a, packed, dtypes.as_numpy(out)), a, b, out)
        np.testing.assert_array_equal(gemm.gemm(a, packed, dtypes.as_numpy(out)),
                                      gemm.gemm(a, gemm.PackedB(b, pairs=pairs), dtypes.as_numpy(out)))


@needs_amx
@pytest.mark.parametrize("threads_", [1, 2])
@pytest.mark.parametrize("out", ["bfloat16", "float32"])
@pytest.mark.parametrize("k", [600, gemm.TILE_KC + 100])
def test_amx_chunks_blocks_and_edges(threads_, out, k, use_threads, every_call_threaded):
    """Products that cross every boundary of ``_thread_tiles``: one block of all of K (600,
    padded to whole tiles) or several with partial sums between them (TILE_KC + 100), items
    that pack their own panels of B in shallow blocks (b not packed, two bands), chunks of
    panels and of bands (several bands an item when B is too deep for a chunk to stay in
    cache), ragged last band and panel; with the epilogue, a transposed a, and b packed or
    not."""
    panels, bands = gemm._tile_blocking(k, 1 << 20)  # for a slab as wide as it likes
    assert (gemm._block_depth(k, gemm.TILES) < k) == (k > gemm.TILE_KC)
    assert (bands > 1) == (k > 2048)
    rng = np.random.default_rng(8)
    for m in (2 * bands * gemm.BAND + 7, gemm.BAND + 7):
        n = (panels + 1) * gemm.NR + 16
        a, b = _operand(rng, (m, k), "bfloat16", "F"), _operand(rng, (k, n), "bfloat16", "C")
        bias = rng.standard_normal(n).astype(np.float32)
        use_threads(threads_)
        for rhs in (b, gemm.pack_b(b)):
            got = gemm.gemm(a, rhs, dtypes.as_numpy(out), bias=bias, activation="gelu")
            _check(got, a, b, out, bias, "gelu")


@needs_amx
@pytest.mark.parametrize("packed", [False, True])
def test_amx_thread_takes_the_work_the_others_left(packed, lone_share):
    """Threads take the items of their own slab first, then what is left of the others' (b's
    panels packed by whoever comes first): share 0 alone computes all of a product cut into
    three slabs of rows, or of columns."""
    lone_share(gemm._thread_tiles)
    rng = np.random.default_rng(9)
    for m, n in [(3 * gemm.BAND + 5, gemm.NR), (40, 3 * gemm.NR + 20)]:
        a, b = _operand(rng, (m, 600), "bfloat16", "C"), _operand(rng, (600, n), "bfloat16", "F")
        _check(gemm.gemm(a, gemm.pack_b(b) if packed else b, np.float32), a, b, "float32")


def test_amx_slabs_reading_the_same_panels_of_b_share_one_packer():
    """Two threads packing the same panels at once would clobber each other's (zero padding
    first): slabs with one packer read the same panels, slabs with two read disjoint ones."""
    for nthreads in (2, 3, 5):
        for m, n in [(600, 64), (40, 700), (200, 150), (32, 64), (1000, 1000)]:
            slabs = [gemm._thread_slab(v, nthreads, m, n, gemm.BAND) for v in range(nthreads)]
            busy = [v for v, (s_lo, s_hi, t_lo, t_hi) in enumerate(slabs) if s_lo < s_hi and t_lo < t_hi]
            for v in busy:
                for w in busy:
                    same = gemm._b_packer(v, nthreads, m, n) == gemm._b_packer(w, nthreads, m, n)
                    (_, _, lo_v, hi_v), (_, _, lo_w, hi_w) = slabs[v], slabs[w]
                    if same:
                        assert (lo_v, hi_v) == (lo_w, hi_w)
                    else:
                        assert hi_v <= lo_w or hi_w <= lo_v


@needs_amx
def test_amx_products_on_two_threads_stay_right_call_after_call(use_threads, every_call_threaded):
    """Two threads, slabs of rows sharing b, which they pack as they go: many calls in a row
    (a race between the threads shows up as a wrong product now and then)."""
    rng = np.random.default_rng(12)
    a, b = _operand(rng, (200, 300), "bfloat16", "C"), _operand(rng, (300, 150), "bfloat16", "C")
    use_threads(2)
    first = gemm.gemm(a, b, np.float32)
    _check(first, a, b, "float32")
    for _ in range(300):
        np.testing.assert_array_equal(gemm.gemm(a, b, np.float32), first)


@needs_amx
@pytest.mark.parametrize("threads_used", [1, 2])
@pytest.mark.parametrize("layout", ["C", "F"])
# 20 and 64 rows: items take all the bands of a slab and pack their panels of b themselves
# (gemm.FUSED_BANDS); 200: the slab's panels are packed first, for all its bands. 1100 deep:
# five blocks of k; 200 columns: a short last panel.
@pytest.mark.parametrize("m", [20, 64, 200])
def test_amx_products_packing_b_as_they_go_or_first_agree(m, layout, threads_used, use_threads,
                                                         every_call_threaded):
    rng = np.random.default_rng(13)
    a, b = _operand(rng, (m, 1100), "bfloat16", "C"), _operand(rng, (1100, 200), "bfloat16", layout)
    use_threads(threads_used)
    got = gemm.gemm(a, b, np.float32)
    _check(got, a, b, "float32")
    # the same blocks of k in the same order as from a PackedB: the same sums, bit for bit
    np.testing.assert_array_equal(got, gemm.gemm(a, gemm.pack_b(b), np.float32))


@needs_lossy
@pytest.mark.parametrize("which", ["a", "b"])
@pytest.mark.parametrize("m, k, n", [(40, 90, 30),  # one thread
                                     (600, 1100, 64),  # threads split the rows: b packed first
                                     (12, 1100, 640)])  # they split the columns, packing their own
def test_bf16_subnormals_take_the_exact_float32_path(which, m, k, n, bf16_path, every_call_threaded):
    """vdpbf16ps and AMX read subnormals as zero: operands holding one must not reach them (the packers
    find them, in the last block of k here, and the product starts again in float32)."""
    bf16 = dtypes.bfloat16
    a, b = np.zeros((m, k), bf16), np.zeros((k, n), bf16)
    tiny, big = dtypes.finfo("bfloat16").smallest_subnormal, 2.0**100
    # products 2**-33, lost if tiny were read as 0
    a[:, k - 3], b[k - 3, :] = (tiny, big) if which == "a" else (big, tiny)
    assert bool(gemm.pack_b(b).pairs) == (which == "a")
    for rhs in (b, gemm.pack_b(b)):
        got = gemm.gemm(a, rhs, np.float32)
        assert (got == np.float32(2.0**-33)).all()


@pytest.mark.parametrize("m, k, n", [(4, 64, 4), (12, 1100, 640)])
def test_bf16_products_below_float32_normals_flush_as_documented(m, k, n, bf16_path, every_call_threaded):
    """Normal bf16 inputs whose products are float32 subnormals (2**-64 * 2**-63): ``matmul``'s
    docstring says vdpbf16ps and AMX flush them to zero; the float32 path, and products of a
    few rows with an unpacked b (``_few_rows_thread``), keep them exactly."""
    a, b = np.full((m, k), 2.0**-64, dtypes.bfloat16), np.full((k, n), 2.0**-63, dtypes.bfloat16)
    exact = np.float32(k * 2.0**-127)
    flushes = bool(gemm._layouts(dtypes.bfloat16)[0])  # AMX or pairs (bf16_path "pairs": AMX hidden)
    for rhs in (b, gemm.pack_b(b)):
        got = gemm.gemm(a, rhs, np.float32)
        in_place = m <= gemm.SKINNY_M and rhs is b
        assert (got == (0 if flushes and not in_place else exact)).all()
    np.testing.assert_array_equal(gemm.gemm(a, gemm.PackedB(b, pairs=False), np.float32), exact)


def test_packed_b_refuses_pairs_it_cannot_make():
    with pytest.raises(ValueError, match="received float16"):
        gemm.PackedB(np.ones((4, 4), np.float16), pairs=True)


def test_mixed_input_dtypes():
    rng = np.random.default_rng(3)
    a, b = _operand(rng, (9, 20), "float16", "C"), _operand(rng, (20, 11), "bfloat16", "C")
    _check(gemm.gemm(a, b, np.float32), a, b, "float32")


def test_inputs_are_not_modified_and_may_be_read_only():
    rng = np.random.default_rng(4)
    a, b = _operand(rng, (30, 40), "float16", "C"), _operand(rng, (40, 20), "float16", "F")
    a_copy, b_copy = a.copy(), b.copy()
    a.flags.writeable = b.flags.writeable = False
    gemm.gemm(a, b, np.float16, bias=np.ones(20, np.float32), activation="relu")
    np.testing.assert_array_equal(a, a_copy)
    np.testing.assert_array_equal(b, b_copy)


def test_writes_into_a_strided_output():
    rng = np.random.default_rng(5)
    a, b = _operand(rng, (20, 300), "bfloat16", "C"), _operand(rng, (300, 6), "bfloat16", "C")
    wide = np.full((20, 10), 7.0, dtypes.bfloat16)
    gemm.gemm(a, b, dtypes.bfloat16, out=wide[:, 2:8])
    _check(wide[:, 2:8], a, b, "bfloat16")
    assert (wide[:, :2].astype(np.float32) == 7).all() and (wide[:, 8:].astype(np.float32) == 7).all()


def test_packed_b_rejects_what_it_cannot_pack():
    with pytest.raises(ValueError, match="Received shape \\(3,\\), dtype float16"):
        gemm.pack_b(np.ones(3, np.float16))
    with pytest.raises(ValueError, match="dtype int32"):
        gemm.pack_b(np.ones((3, 3), np.int32))


@pytest.mark.parametrize("a_shape, b_shape", [
    ((5,), (5,)), ((5,), (5, 3)), ((4, 5), (5,)), ((2, 4, 5), (5, 3)), ((2, 1, 4, 5), (3, 5, 6)),
    ((1, 4, 5), (3, 5, 6)),
])
def test_backend_matmul_numpy_shape_rules(a_shape, b_shape):
    rng = np.random.default_rng(6)
    a = rng.standard_normal(a_shape).astype(np.float16)
    b = rng.standard_normal(b_shape).astype(np.float16)
    got = backend_matmul(a, b, np.float16)
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == exact.shape and got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), exact, rtol=2e-3, atol=2e-3)


def test_backend_matmul_transposed_views_of_batches():
    """The backward pass's ``a.T @ g`` and ``g @ b.T`` on batched views, without copies."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 40, 30)).astype(dtypes.bfloat16)
    g = rng.standard_normal((3, 40, 20)).astype(dtypes.bfloat16)
    got = backend_matmul(a.transpose(0, 2, 1), g, np.float32)
    exact = np.matmul(a.astype(np.float64).transpose(0, 2, 1), g.astype(np.float64))
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)
