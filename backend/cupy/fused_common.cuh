// Helpers shared by the fused two-layer kernels (gather.cu, two_layer_step.cu,
// two_layer_eval.cu, two_layer_numgrad.cu).
//
// backend/cupy/fused.py prepends this file to each of them before handing the
// text to NVRTC (cupy.RawModule), so that CuPy's kernel cache, which keys on
// the source text, sees every change; the tests compile the same
// concatenation with nvcc and as host C++. Keep to what both sides have: the
// plain C math functions (exp/expf, log/logf), no math.h constants.
//
// Every kernel here walks its work items with a grid-stride loop, so a launch
// of any geometry covers them all, and its threads never cooperate: no shared
// memory, no barrier. The only cross-thread operation is atomicAdd on an
// integer counter, which is exact in any order (and so also when the host
// stand-in, tests/cupy_standin, runs the threads one after another).

// The 1e-7 inside the log of the book's cross-entropy (backend.CE_DELTA).
#define XPNET_CE_DELTA 1e-7

__device__ __forceinline__ float xf_exp(float v) { return expf(v); }
__device__ __forceinline__ double xf_exp(double v) { return exp(v); }
__device__ __forceinline__ float xf_log(float v) { return logf(v); }
__device__ __forceinline__ double xf_log(double v) { return log(v); }

__device__ __forceinline__ long long xf_first() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ long long xf_stride() {
    return (long long)gridDim.x * blockDim.x;
}

// NaN without math.h, which NVRTC does not provide: log of a negative number.
template <typename T>
__device__ __forceinline__ T xf_nan() {
    return xf_log((T)-1);
}

// The hidden activation, as nn.functions.sigmoid and the Relu layer compute
// it: the sigmoid never overflows (exp of -|a| only), and the ReLU keeps a
// NaN (NaN is not <= 0).
template <typename T>
__device__ __forceinline__ T xf_activate(T a, long long sigmoid) {
    if (sigmoid) {
        T e = xf_exp(a < 0 ? a : -a);
        return a >= 0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);
    }
    return a <= 0 ? (T)0 : a;
}

// A label as Python indexes with it: -C..-1 count from the end. Anything
// outside [-C, C) gives -1 (the callers make that row's loss NaN).
__device__ __forceinline__ long long xf_label(long long label, long long classes) {
    if (label < 0) label += classes;
    return (label < 0 || label >= classes) ? -1 : label;
}
