/* The gate arithmetic of one step of trainer.packed_gru, fused: one pass over the step's rows
 * instead of about ten torch operations (each a pass over memory plus a dispatch). Compiled at
 * first use by trainer/cells.py, once with REAL=float and once with REAL=double; the matmuls stay
 * in torch. Layouts (all contiguous): lanes L (GRU x direction, forward lanes even), step-major
 * rows S, hidden size H; a step covers rows [start, start + rows) of every lane, and rows at or
 * past a lane's count (fwd for even lanes, rev for odd) keep their state and get no gradient. */
#include <stddef.h>
#include <math.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#if REAL_IS_DOUBLE
typedef double real;
#define EXP exp
#define TANH tanh
#define NAME(f) CAT(f, f64)
#else
typedef float real;
#define EXP expf
#define TANH tanhf
#define NAME(f) CAT(f, f32)
#endif

/* gh: (L, rows, 3H) = h W_hh^T of this step; h: (L, batch, H) state, updated in place.
 * Writes the step's rows of h_prev, rz (2H: r, z), ghn (h W_hn^T + b_hn), n and out. */
void NAME(gru_forward_step)(const real *g, const real *gh, const real *b_hn, real *h, real *h_prev,
                            real *rz, real *ghn, real *n_all, real *out, long L, long S,
                            long H, long batch, long start, long rows, long fwd, long rev) {
#pragma omp parallel for collapse(2) schedule(static)
    for (long l = 0; l < L; l++) {
        for (long i = 0; i < rows; i++) {
            const long count = (l % 2 == 0) ? fwd : rev;
            const real *b = b_hn + l * H;
            const long o = l * S + start + i;
            const real *gi = g + o * 3 * H, *ghi = gh + (l * rows + i) * 3 * H;
            real *hi = h + (l * batch + i) * H, *hpi = h_prev + o * H, *rzi = rz + o * 2 * H;
            real *gni = ghn + o * H, *ni = n_all + o * H, *oi = out + o * H;
            const int keep = i >= count;
#pragma omp simd
            for (long j = 0; j < H; j++) {
                const real hp = hi[j];
                const real r = 1 / (1 + EXP(-(gi[j] + ghi[j])));
                const real z = 1 / (1 + EXP(-(gi[H + j] + ghi[H + j])));
                const real gn = ghi[2 * H + j] + b[j];
                const real n = TANH(gi[2 * H + j] + r * gn);
                const real nw = n + z * (hp - n);
                hpi[j] = hp, rzi[j] = r, rzi[H + j] = z, gni[j] = gn, ni[j] = n, oi[j] = nw;
                hi[j] = keep ? hp : nw;
            }
        }
    }
}

/* dh: (L, batch, H) gradient reaching each state; d_out: (L, S, H) or NULL. Writes the step's rows
 * of d_all, (4H: r * d_n | d_r | d_z | d_n, pre-activation), and gz: (L, rows, H) = grad * z, the
 * part of the gradient that reaches the previous state directly. */
void NAME(gru_backward_step)(const real *dh, const real *d_out, const real *rz, const real *ghn,
                             const real *n_all, const real *h_prev, real *d_all, real *gz, long L,
                             long S, long H, long batch, long start, long rows, long fwd, long rev) {
#pragma omp parallel for collapse(2) schedule(static)
    for (long l = 0; l < L; l++) {
        for (long i = 0; i < rows; i++) {
            const long count = (l % 2 == 0) ? fwd : rev;
            const long o = l * S + start + i;
            const real *dhi = dh + (l * batch + i) * H, *doi = d_out ? d_out + o * H : NULL;
            const real *rzi = rz + o * 2 * H, *gni = ghn + o * H, *ni = n_all + o * H, *hpi = h_prev + o * H;
            real *dk = d_all + o * 4 * H, *gzi = gz + (l * rows + i) * H;
            const real on = i < count ? 1 : 0;  /* kept rows pass their gradient on untouched */
#pragma omp simd
            for (long j = 0; j < H; j++) {
                const real gr = on * (dhi[j] + (doi ? doi[j] : 0));
                const real r = rzi[j], z = rzi[H + j], n = ni[j];
                const real gzv = gr * z;
                const real dpn = (gr - gzv) * (1 - n * n);
                dk[j] = dpn * r;
                dk[H + j] = dpn * gni[j] * r * (1 - r);
                dk[2 * H + j] = gr * (hpi[j] - n) * z * (1 - z);
                dk[3 * H + j] = dpn;
                gzi[j] = gzv;
            }
        }
    }
}
