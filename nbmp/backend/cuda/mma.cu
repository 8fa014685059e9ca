// Tensor-core multiply-accumulate for nbmp's GEMM kernels (linked by numba-cuda, inlined by LTO).
//
// One warp computes D = A B + C for a 16x16 A (row-major), 16x8 B (column-major) and 16x8 float32
// C/D with `mma.sync.aligned.m16n8k16` (sm_80+). Each lane passes its fragments: a0..a3 and b0, b1
// hold two 16-bit values each (lower k in the low half), c0..c3 its four accumulators. Numba's ABI:
// the result goes through the first pointer, the int return value is a status (always 0).

struct nbmp_f32x4 { float x, y, z, w; };

#define NBMP_MMA(NAME, TYPE)                                                                      \
extern "C" __device__ int NAME(nbmp_f32x4* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3, \
        unsigned b0, unsigned b1, float c0, float c1, float c2, float c3)                         \
{                                                                                                 \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." TYPE "." TYPE ".f32 "                   \
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};"            \
                 : "=f"(d->x), "=f"(d->y), "=f"(d->z), "=f"(d->w)                                 \
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1),                          \
                   "f"(c0), "f"(c1), "f"(c2), "f"(c3));                                           \
    return 0;                                                                                     \
}

NBMP_MMA(nbmp_mma_f16, "f16")
NBMP_MMA(nbmp_mma_bf16, "bf16")
