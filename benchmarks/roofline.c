/* A tight C loop of one recurrent step: the roofline rnnjit's per-step latency is compared with.
 *
 * Same packed layout as the engine (engine/kernels/layout.py): M = [W^T; R^T] (I+H, G*H), biases pre-added,
 * the same rational tanh, K outside / gate units inside. No Python anywhere in the timed loop: every step
 * is timed here with clock_gettime and the nanoseconds are written to `ns` for the caller's percentiles.
 * Built at run time by benchmarks/roofline.py with the system compiler (-O3 -march=native -ffast-math).
 */
#include <math.h>
#include <string.h>
#include <time.h>

static inline float rtanh(float x) {
    const float c = 7.90531110763549805f;
    x = x < -c ? -c : (x > c ? c : x);
    float x2 = x * x;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    return p / q;
}
static inline float rsig(float x) { return 0.5f * rtanh(0.5f * x) + 0.5f; }

/* g (N) = b + xh (K) @ M (K, N) */
static void gemv(float *restrict g, const float *restrict xh, const float *restrict M, const float *restrict b,
                 int K, int N) {
    memcpy(g, b, sizeof(float) * N);
    for (int k = 0; k < K; k++) {
        const float xk = xh[k];
        const float *restrict w = M + (size_t)k * N;
        for (int j = 0; j < N; j++) g[j] += xk * w[j];
    }
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* cell: 0 LSTM (gates i,f,g,o), 1 GRU (r,z,n; linear_before_reset=1: M holds [W_rz^T; R_rz^T] and the n parts
 * apart in Wn (I,H), Rn (H,H), bxn, bhn), 2 RNN tanh.  x: steps x I inputs; y: steps x H outputs. */
void run(int cell, int I, int H, int steps, const float *x, float *y, const float *M, const float *b,
         const float *Wn, const float *Rn, const float *bxn, const float *bhn, float *scratch, double *ns) {
    int G = cell == 0 ? 4 : (cell == 1 ? 2 : 1);
    float *xh = scratch, *g = xh + I + H, *c = g + 4 * H, *h = c + H, *gn = h + H, *hn = gn + H;
    memset(c, 0, sizeof(float) * H);
    memset(h, 0, sizeof(float) * H);
    for (int t = 0; t < steps; t++) {
        double t0 = now_ns();
        memcpy(xh, x + (size_t)t * I, sizeof(float) * I);
        memcpy(xh + I, h, sizeof(float) * H);
        gemv(g, xh, M, b, I + H, G * H);
        if (cell == 0) {
            for (int j = 0; j < H; j++) {
                float i = rsig(g[j]), f = rsig(g[H + j]), z = rtanh(g[2 * H + j]), o = rsig(g[3 * H + j]);
                c[j] = f * c[j] + i * z;
                h[j] = o * rtanh(c[j]);
            }
        } else if (cell == 1) {
            gemv(gn, xh, Wn, bxn, I, H);          /* x W_n^T + Wb_n */
            gemv(hn, h, Rn, bhn, H, H);           /* h R_n^T + Rb_n */
            for (int j = 0; j < H; j++) {
                float r = rsig(g[j]), z = rsig(g[H + j]);
                float n = rtanh(gn[j] + r * hn[j]);
                h[j] = n + z * (h[j] - n);
            }
        } else {
            for (int j = 0; j < H; j++) h[j] = rtanh(g[j]);
        }
        memcpy(y + (size_t)t * H, h, sizeof(float) * H);
        ns[t] = now_ns() - t0;
    }
}

/* A causal temporal convolution (engine/kernels/conv.py's arithmetic): weights (G, K, cin_g, cout_g), bias (cout),
 * state (L = (K-1)*dil past frames, oldest first, shifted by one frame per step). x: steps x cin, y: steps x cout. */
void conv_run(int cin, int cout, int K, int dil, int G, int steps, const float *x, float *y, const float *W,
              const float *bias, float *state, double *ns) {
    const int cin_g = cin / G, cout_g = cout / G, L = (K - 1) * dil;
    for (int t = 0; t < steps; t++) {
        double t0 = now_ns();
        const float *xt = x + (size_t)t * cin;
        float *restrict yt = y + (size_t)t * cout;
        memcpy(yt, bias, sizeof(float) * cout);
        for (int g = 0; g < G; g++)
            for (int k = 0; k < K; k++) {
                const int back = (K - 1 - k) * dil;
                const float *src = back == 0 ? xt + g * cin_g : state + (size_t)(L - back) * cin + g * cin_g;
                const float *restrict w = W + (size_t)(g * K + k) * cin_g * cout_g;
                float *restrict yg = yt + g * cout_g;
                for (int i = 0; i < cin_g; i++) {
                    const float v = src[i];
                    const float *restrict wi = w + (size_t)i * cout_g;
                    for (int o = 0; o < cout_g; o++) yg[o] += v * wi[o];
                }
            }
        if (L > 0) {
            memmove(state, state + cin, sizeof(float) * (size_t)(L - 1) * cin);
            memcpy(state + (size_t)(L - 1) * cin, xt, sizeof(float) * cin);
        }
        ns[t] = now_ns() - t0;
    }
}

/* A frame-wise 1-D convolution over each frame's last axis (torch Conv1d per timestep, groups 1, stride 1), the
 * arithmetic of engine/kernels/framewise.py's direct loop: the frame copied zero-padded once, then per (output
 * channel, input channel, tap) one weight times a contiguous run of inputs. frame (cin, F) -> (cout, P),
 * P = F + 2 pad - dil (K-1), weight (cout, cin, K). xp: scratch of cin * (F + 2 pad). */
void frame_conv_run(int cin, int cout, int F, int K, int stride, int pad, int dil, int steps, const float *x,
                    float *y, const float *W, const float *bias, float *xp, double *ns) {
    const int Fp = F + 2 * pad, P = (F + 2 * pad - dil * (K - 1) - 1) / stride + 1;
    for (int t = 0; t < steps; t++) {
        double t0 = now_ns();
        const float *xt = x + (size_t)t * cin * F;
        float *restrict yt = y + (size_t)t * cout * P;
        memset(xp, 0, sizeof(float) * (size_t)cin * Fp);
        for (int i = 0; i < cin; i++) memcpy(xp + (size_t)i * Fp + pad, xt + (size_t)i * F, sizeof(float) * F);
        for (int o = 0; o < cout; o++) {
            float *restrict yo = yt + (size_t)o * P;
            for (int p = 0; p < P; p++) yo[p] = bias[o];
            for (int i = 0; i < cin; i++)
                for (int k = 0; k < K; k++) {
                    const float w = W[((size_t)o * cin + i) * K + k];
                    const float *restrict seg = xp + (size_t)i * Fp + k * dil;
                    for (int p = 0; p < P; p++) yo[p] += w * seg[p];
                }
        }
        ns[t] = now_ns() - t0;
    }
}
