// Batch Normalization's forward (training mode) and backward for the CuPy
// backend, one launch each, where CuPy's generic code launches about a dozen
// kernels with a temporary each.
//
// x, out, xc, xn, dout, dx: C-contiguous (n, d); gamma, beta, std, mu, var,
// dgamma, dbeta: (d,). One thread per column (feature) walks the rows, so
// neighbouring threads read neighbouring addresses; column sums run in double
// whatever T is. Grid-stride over columns; threads never cooperate.
// Forward: the book's mu, var, std = sqrt(var + eps), xn, gamma * xn + beta.
// Backward: dx = gamma / std * (dout - mean(dout) - xn * mean(dout * xn)),
// the book's chain of terms summed in closed form.

__device__ __forceinline__ float xb_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double xb_sqrt(double v) { return sqrt(v); }

#define XF_BATCHNORM(T, SUFFIX)                                                    \
    extern "C" __global__ void batchnorm_forward_##SUFFIX(                         \
        const T* x, const T* gamma, const T* beta, T* out, T* xc, T* xn, T* std,   \
        T* mu, T* var, long long n, long long d, T eps) {                          \
        for (long long j = xf_first(); j < d; j += xf_stride()) {                  \
            double s = 0;                                                          \
            for (long long i = 0; i < n; ++i) s += (double)x[i * d + j];           \
            T m = (T)(s / (double)n);                                              \
            double q = 0;                                                          \
            for (long long i = 0; i < n; ++i) {                                    \
                T c = x[i * d + j] - m;                                            \
                xc[i * d + j] = c;                                                 \
                q += (double)c * (double)c;                                        \
            }                                                                      \
            T v = (T)(q / (double)n);                                              \
            T sd = xb_sqrt(v + eps);                                               \
            mu[j] = m;                                                             \
            var[j] = v;                                                            \
            std[j] = sd;                                                           \
            for (long long i = 0; i < n; ++i) {                                    \
                T z = xc[i * d + j] / sd;                                          \
                xn[i * d + j] = z;                                                 \
                out[i * d + j] = gamma[j] * z + beta[j];                           \
            }                                                                      \
        }                                                                          \
    }                                                                              \
    extern "C" __global__ void batchnorm_backward_##SUFFIX(                        \
        const T* dout, const T* gamma, const T* xn, const T* std, T* dx,           \
        T* dgamma, T* dbeta, long long n, long long d) {                           \
        for (long long j = xf_first(); j < d; j += xf_stride()) {                  \
            double sb = 0, sg = 0;                                                 \
            for (long long i = 0; i < n; ++i) {                                    \
                double g = (double)dout[i * d + j];                                \
                sb += g;                                                           \
                sg += g * (double)xn[i * d + j];                                   \
            }                                                                      \
            dbeta[j] = (T)sb;                                                      \
            dgamma[j] = (T)sg;                                                     \
            T mb = (T)(sb / (double)n), mg = (T)(sg / (double)n);                  \
            T scale = gamma[j] / std[j];                                           \
            for (long long i = 0; i < n; ++i) {                                    \
                long long k = i * d + j;                                           \
                dx[k] = scale * (dout[k] - mb - xn[k] * mg);                       \
            }                                                                      \
        }                                                                          \
    }

XF_BATCHNORM(float, f32)
XF_BATCHNORM(double, f64)
