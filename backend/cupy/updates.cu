// Chapter 6's element-wise kernels of the CuPy backend: the optimizers'
// update rules and Dropout's mask.
//
// Each update kernel applies the book's rule (backend/updates.py) to one
// parameter array of n elements and its state, in place, in the book's order
// of operations, with the rule's scalars in the array's type; one launch per
// parameter array, no temporaries. One thread per element, grid-stride;
// threads never cooperate. sqrt/sqrtf are plain C, on both sides (NVRTC and
// the host build of the tests).

__device__ __forceinline__ float xf_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double xf_sqrt(double v) { return sqrt(v); }

#define XF_UPDATES(T, SUFFIX)                                                      \
    extern "C" __global__ void momentum_##SUFFIX(T* p, const T* g, T* v,          \
                                                 long long n, T lr, T mom) {       \
        for (long long i = xf_first(); i < n; i += xf_stride()) {                  \
            T vi = v[i] * mom;                                                     \
            vi = vi - lr * g[i];                                                   \
            v[i] = vi;                                                             \
            p[i] = p[i] + vi;                                                      \
        }                                                                          \
    }                                                                              \
    extern "C" __global__ void nesterov_##SUFFIX(T* p, const T* g, T* v,          \
                                                 long long n, T lr, T mom,         \
                                                 T mom2, T lr_plus) {              \
        for (long long i = xf_first(); i < n; i += xf_stride()) {                  \
            T gi = g[i];                                                           \
            T vi = v[i] * mom;                                                     \
            vi = vi - lr * gi;                                                     \
            v[i] = vi;                                                             \
            T pi = p[i] + mom2 * vi;                                               \
            p[i] = pi - lr_plus * gi;                                              \
        }                                                                          \
    }                                                                              \
    extern "C" __global__ void adagrad_##SUFFIX(T* p, const T* g, T* h,           \
                                                long long n, T lr, T eps) {        \
        for (long long i = xf_first(); i < n; i += xf_stride()) {                  \
            T gi = g[i];                                                           \
            T hi = h[i] + gi * gi;                                                 \
            h[i] = hi;                                                             \
            p[i] = p[i] - lr * gi / (xf_sqrt(hi) + eps);                           \
        }                                                                          \
    }                                                                              \
    extern "C" __global__ void rmsprop_##SUFFIX(T* p, const T* g, T* h,           \
                                                long long n, T lr, T decay,        \
                                                T keep, T eps) {                   \
        for (long long i = xf_first(); i < n; i += xf_stride()) {                  \
            T gi = g[i];                                                           \
            T hi = h[i] * decay;                                                   \
            hi = hi + keep * gi * gi;                                              \
            h[i] = hi;                                                             \
            p[i] = p[i] - lr * gi / (xf_sqrt(hi) + eps);                           \
        }                                                                          \
    }                                                                              \
    extern "C" __global__ void adam_##SUFFIX(T* p, const T* g, T* m, T* v,        \
                                             long long n, T lr_t, T b1c, T b2c,    \
                                             T eps) {                              \
        for (long long i = xf_first(); i < n; i += xf_stride()) {                  \
            T gi = g[i];                                                           \
            T mi = m[i] + b1c * (gi - m[i]);                                       \
            T vi = v[i] + b2c * (gi * gi - v[i]);                                  \
            m[i] = mi;                                                             \
            v[i] = vi;                                                             \
            p[i] = p[i] - lr_t * mi / (xf_sqrt(vi) + eps);                         \
        }                                                                          \
    }

XF_UPDATES(float, f32)
XF_UPDATES(double, f64)

// The "lowbias32" integer hash (backend/updates.py's _mix32), bit for bit.
__device__ __forceinline__ unsigned int xf_mix32(unsigned int h) {
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    return h;
}

// Dropout's keep-mask (backend.updates.dropout_mask): element i is kept
// (1) iff its hash under the call's keys reaches the threshold.
extern "C" __global__ void dropout_mask_u8(unsigned char* mask, long long n,
                                           long long k0, long long k1,
                                           long long k2, long long threshold) {
    for (long long i = xf_first(); i < n; i += xf_stride()) {
        unsigned int h = (unsigned int)i * 0x9E3779B9u;
        h = xf_mix32(h ^ (unsigned int)k0);
        h = xf_mix32(h ^ (unsigned int)k1);
        h = xf_mix32(h + (unsigned int)k2);
        mask[i] = (unsigned long long)h >= (unsigned long long)threshold;
    }
}
