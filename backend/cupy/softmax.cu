// Fused softmax and softmax-with-loss kernels of the CuPy backend.
//
// Layout: x, y and dx are C-contiguous (rows, cols). Targets have `period`
// rows (labels: int64 (period,); one-hot: (period, cols)) and row r of x uses
// target row r % period: period == rows for one batch, or the batch size N
// when x stacks the scores of many perturbed copies of a network (P * N rows).
// One thread owns one row and walks it with a grid-stride loop, so a launch
// of any geometry covers every row and threads never cooperate. Rows are
// short here (10 classes), which is what makes one thread per row the right
// shape; the Python side sends wide rows to CuPy's own reductions.
//
// Overflow safety: the row statistics are computed online in a single read of
// the row. m is the running maximum and s the running sum of exp(x - m); when
// a larger value arrives, s is rescaled by exp(m_old - m_new). Every exponent
// is <= 0, so nothing overflows, and y = exp(x - m) / s.
//
// This file is compiled three ways: by NVRTC at run time (cupy.RawModule), by
// nvcc for sm_80 and sm_90 in tests/backend/test_cuda_kernels.py, and as host
// C++ in the same test, which defines the CUDA built-ins and runs every
// (block, thread) in turn, so that its logic is checked without a GPU. Keep to
// the plain C math functions (exp/expf, log/logf) that exist on both sides.

// The 1e-7 inside the log of the book's cross-entropy (backend._base.CE_DELTA).
#define XPNET_CE_DELTA 1e-7

__device__ __forceinline__ float xpnet_exp(float v) { return expf(v); }
__device__ __forceinline__ double xpnet_exp(double v) { return exp(v); }
__device__ __forceinline__ float xpnet_log(float v) { return logf(v); }
__device__ __forceinline__ double xpnet_log(double v) { return log(v); }

__device__ __forceinline__ long long xpnet_first_row() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ long long xpnet_row_stride() {
    return (long long)gridDim.x * blockDim.x;
}

// NaN without math.h, which NVRTC does not provide: log of a negative number.
template <typename T>
__device__ __forceinline__ T xpnet_nan() {
    return xpnet_log((T)-1);
}

// Online maximum m and sum s of exp(x[c] - m) over one row (cols >= 1), in
// one read. A NaN anywhere, or a row that is all -inf, gives NaN outputs, as
// NumPy's max-subtracting softmax does.
template <typename T>
__device__ void xpnet_row_stats(const T* x, long long cols, T* m_out, T* s_out) {
    T m = x[0];
    T s = 1;
    for (long long c = 1; c < cols; ++c) {
        T v = x[c];
        if (v > m) {
            s = s * xpnet_exp(m - v) + 1;
            m = v;
        } else {
            s += xpnet_exp(v - m);
        }
    }
    *m_out = m;
    *s_out = s;
}

// y = softmax(x) along each row.
template <typename T>
__device__ void xpnet_softmax_rows(const T* x, T* y, long long rows, long long cols) {
    for (long long r = xpnet_first_row(); r < rows; r += xpnet_row_stride()) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T m, s;
        xpnet_row_stats(xr, cols, &m, &s);
        for (long long c = 0; c < cols; ++c) yr[c] = xpnet_exp(xr[c] - m) / s;
    }
}

// y = softmax(x); loss[r] = -log(y[r, t[r % period]] + 1e-7). Labels may be
// negative down to -cols (Python indexing); any other label gives a NaN loss,
// since a kernel cannot raise and checking on the host would wait for the device.
template <typename T>
__device__ void xpnet_softmax_xent_labels(const T* x, const long long* t, T* y,
                                          T* loss, long long rows, long long cols,
                                          long long period) {
    for (long long r = xpnet_first_row(); r < rows; r += xpnet_row_stride()) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T m, s;
        xpnet_row_stats(xr, cols, &m, &s);
        long long label = t[r % period];
        if (label < 0) label += cols;
        T picked = xpnet_nan<T>();
        for (long long c = 0; c < cols; ++c) {
            T p = xpnet_exp(xr[c] - m) / s;
            yr[c] = p;
            if (c == label) picked = p;
        }
        loss[r] = -xpnet_log(picked + (T)XPNET_CE_DELTA);
    }
}

// y = softmax(x); loss[r] = -sum_c t[r % period, c] * log(y[r, c] + 1e-7).
template <typename T>
__device__ void xpnet_softmax_xent_onehot(const T* x, const T* t, T* y, T* loss,
                                          long long rows, long long cols,
                                          long long period) {
    for (long long r = xpnet_first_row(); r < rows; r += xpnet_row_stride()) {
        const T* xr = x + r * cols;
        const T* tr = t + (r % period) * cols;
        T* yr = y + r * cols;
        T m, s;
        xpnet_row_stats(xr, cols, &m, &s);
        T acc = 0;
        for (long long c = 0; c < cols; ++c) {
            T p = xpnet_exp(xr[c] - m) / s;
            yr[c] = p;
            acc += tr[c] * xpnet_log(p + (T)XPNET_CE_DELTA);
        }
        loss[r] = -acc;
    }
}

// dx = (y - onehot(t)) * scale, with scale = dout / N computed by the caller.
template <typename T>
__device__ void xpnet_xent_backward_labels(const T* y, const long long* t, T* dx,
                                           long long rows, long long cols, T scale) {
    for (long long r = xpnet_first_row(); r < rows; r += xpnet_row_stride()) {
        long long label = t[r] < 0 ? t[r] + cols : t[r];
        for (long long c = 0; c < cols; ++c) {
            T hit = c == label ? (T)1 : (T)0;
            dx[r * cols + c] = (y[r * cols + c] - hit) * scale;
        }
    }
}

// dx = (y - t) * scale for one-hot (or any soft) targets t.
template <typename T>
__device__ void xpnet_xent_backward_onehot(const T* y, const T* t, T* dx,
                                           long long rows, long long cols, T scale) {
    for (long long r = xpnet_first_row(); r < rows; r += xpnet_row_stride()) {
        for (long long c = 0; c < cols; ++c) {
            long long i = r * cols + c;
            dx[i] = (y[i] - t[i]) * scale;
        }
    }
}

// extern "C" entry points (no name mangling), one per kernel and dtype.
#define XPNET_KERNELS(T, SUFFIX)                                                   \
    extern "C" __global__ void softmax_rows_##SUFFIX(                              \
        const T* x, T* y, long long rows, long long cols) {                        \
        xpnet_softmax_rows<T>(x, y, rows, cols);                                   \
    }                                                                              \
    extern "C" __global__ void softmax_xent_labels_##SUFFIX(                       \
        const T* x, const long long* t, T* y, T* loss, long long rows,             \
        long long cols, long long period) {                                        \
        xpnet_softmax_xent_labels<T>(x, t, y, loss, rows, cols, period);           \
    }                                                                              \
    extern "C" __global__ void softmax_xent_onehot_##SUFFIX(                       \
        const T* x, const T* t, T* y, T* loss, long long rows, long long cols,     \
        long long period) {                                                        \
        xpnet_softmax_xent_onehot<T>(x, t, y, loss, rows, cols, period);           \
    }                                                                              \
    extern "C" __global__ void xent_backward_labels_##SUFFIX(                      \
        const T* y, const long long* t, T* dx, long long rows, long long cols,     \
        T scale) {                                                                 \
        xpnet_xent_backward_labels<T>(y, t, dx, rows, cols, scale);                \
    }                                                                              \
    extern "C" __global__ void xent_backward_onehot_##SUFFIX(                      \
        const T* y, const T* t, T* dx, long long rows, long long cols, T scale) {  \
        xpnet_xent_backward_onehot<T>(y, t, dx, rows, cols, scale);                \
    }

XPNET_KERNELS(float, f32)
XPNET_KERNELS(double, f64)
