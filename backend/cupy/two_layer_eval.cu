// The fused evaluation of TwoLayerNet on the CuPy backend: after the cuBLAS
// product h = x @ W1 of a chunk of rows, one kernel does the rest.
//
// One thread per row (grid-stride): z = act(h + b1) in place, the scores
// z @ W2 + b2, their arg-max (ties go to the first class, a NaN score counts
// as the maximum, as numpy.argmax does) and the comparison with the label.
// Each thread adds its rows' counts to two device counters with atomicAdd
// (integers, so the total is exact in any order): counts[0] the rows
// classified right, counts[1] the rows on which some hidden ReLU unit fired
// (kept an input that was not <= 0). The host reads both once per
// evaluation. The second product runs here rather than on cuBLAS: at 50 x 10
// per row it is cheaper than a launch, and it keeps the chunk at two launches.

template <typename T>
__device__ __forceinline__ bool xf_isnan(T v) {
    return v != v;
}

template <typename T>
__device__ void xf_count_correct(T* h, const T* b1, const T* W2, const T* b2,
                                 const long long* labels, unsigned long long* counts,
                                 long long rows, long long hidden, long long classes,
                                 long long sigmoid) {
    unsigned long long correct = 0, fired = 0;
    for (long long i = xf_first(); i < rows; i += xf_stride()) {
        T* hi = h + i * hidden;
        bool row_fired = false;
        for (long long j = 0; j < hidden; ++j) {
            hi[j] = xf_activate(hi[j] + b1[j], sigmoid);
            row_fired = row_fired || hi[j] != 0;  // a > 0, or NaN: kept by the ReLU
        }
        long long arg = 0;
        T best = 0;
        for (long long c = 0; c < classes; ++c) {
            T acc = 0;
            for (long long j = 0; j < hidden; ++j) acc += hi[j] * W2[j * classes + c];
            T v = acc + b2[c];
            if (xf_isnan(v)) {
                arg = c;  // the first NaN is the arg-max
                break;
            }
            if (c == 0 || v > best) {
                best = v;
                arg = c;
            }
        }
        correct += arg == labels[i] ? 1 : 0;
        fired += row_fired ? 1 : 0;
    }
    if (correct) atomicAdd(&counts[0], correct);
    if (fired) atomicAdd(&counts[1], fired);
}

#define XF_EVAL(T, SUFFIX)                                                         \
    extern "C" __global__ void count_correct_##SUFFIX(                             \
        T* h, const T* b1, const T* W2, const T* b2, const long long* labels,      \
        unsigned long long* counts, long long rows, long long hidden,              \
        long long classes, long long sigmoid) {                                    \
        xf_count_correct<T>(h, b1, W2, b2, labels, counts, rows, hidden, classes,  \
                            sigmoid);                                              \
    }

XF_EVAL(float, f32)
XF_EVAL(double, f64)
