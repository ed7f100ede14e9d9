// The fast numerical gradient of TwoLayerNet on the CuPy backend, in double.
//
// The same central differences of the same loss as backend/numgrad.py and the
// Numba kernels (read backend/numgrad.py for why reusing the unperturbed pass
// is exact): for every parameter p, sum over the samples n of
// l_n(p + h) - l_n(p - h), times 1 / (N * 2h). A perturbation moves
//   W1[i, j]: unit j's pre-activation of the samples with x[n, i] != 0, by
//             ±x[n, i]·h; b1[j]: of every sample, by ±h;
//   W2[j, c]: score c of every sample, by ±z1[n, j]·h; b2[c]: by ±h;
// and each moved sample's loss is evaluated in full from there: activation,
// the scores (only unit j's term of the sum moves), softmax with the row
// maximum subtracted, and the cross-entropy with its 1e-7. A sample whose
// activation does not change (a ReLU unit that stays blocked) keeps its
// unperturbed loss on both sides, and samples the perturbation does not reach
// cancel exactly, so neither is evaluated.
//
// numgrad_forward: one thread per sample, the unperturbed pass.
// numgrad_params: one thread per parameter, in the order W1 (D, M) row-major,
// b1 (M), W2 (M, C) row-major, b2 (C), so the thread's index is where its
// gradient goes in one flat output. With consecutive threads on consecutive
// hidden units j of one input i, a warp reads the same x[n, i] and takes the
// same branch. Threads never cooperate.

// Cross-entropy of one sample whose scores are a2n[c] + d * w[c] (w != 0), or
// a2n[c] with d added to score `moved` only (w == 0). label >= 0 picks the
// class (weight 1); label == -1 uses the target row tn (C weights); any other
// label gives NaN.
__device__ double xf_moved_loss(const double* a2n, double d, const double* w,
                                long long moved, long long label, const double* tn,
                                long long classes) {
    if (label < -1) return xf_nan<double>();
    double top = 0;
    for (long long c = 0; c < classes; ++c) {
        double s = w ? a2n[c] + d * w[c] : (c == moved ? a2n[c] + d : a2n[c]);
        top = (c == 0 || s > top) ? s : top;
    }
    double total = 0, e_label = 0;
    for (long long c = 0; c < classes; ++c) {
        double s = w ? a2n[c] + d * w[c] : (c == moved ? a2n[c] + d : a2n[c]);
        double e = xf_exp(s - top);
        total += e;
        if (c == label) e_label = e;
    }
    if (label >= 0) return -xf_log(e_label / total + XPNET_CE_DELTA);
    double loss = 0;
    for (long long c = 0; c < classes; ++c) {
        if (tn[c] == 0) continue;  // 0 * log(positive) adds exactly nothing
        double s = w ? a2n[c] + d * w[c] : (c == moved ? a2n[c] + d : a2n[c]);
        loss -= tn[c] * xf_log(xf_exp(s - top) / total + XPNET_CE_DELTA);
    }
    return loss;
}

// The label of sample n for xf_moved_loss: the class, -1 for target rows,
// -2 for a label outside [0, C) (the host raises after reading `bad`).
__device__ __forceinline__ long long xf_sample_label(const long long* labels,
                                                     long long use_target, long long n,
                                                     long long classes) {
    if (use_target) return -1;
    long long label = labels[n];
    return (label < 0 || label >= classes) ? -2 : label;
}

// a1 = h + b1 (h = x @ W1 on entry, in place), z1 = act(a1), a2 = z1 @ W2 + b2
// and the unperturbed loss of each sample; counts labels outside [0, C).
__device__ void xf_numgrad_forward(double* h, const double* b1, const double* W2,
                                   const double* b2, const long long* labels,
                                   const double* target, double* z1, double* a2,
                                   double* base, unsigned long long* bad,
                                   long long rows, long long hidden, long long classes,
                                   long long use_target, long long sigmoid) {
    for (long long n = xf_first(); n < rows; n += xf_stride()) {
        double* a1n = h + n * hidden;
        double* z1n = z1 + n * hidden;
        double* a2n = a2 + n * classes;
        for (long long j = 0; j < hidden; ++j) {
            a1n[j] += b1[j];
            z1n[j] = xf_activate(a1n[j], sigmoid);
        }
        for (long long c = 0; c < classes; ++c) {
            double acc = 0;
            for (long long j = 0; j < hidden; ++j) acc += z1n[j] * W2[j * classes + c];
            a2n[c] = acc + b2[c];
        }
        long long label = xf_sample_label(labels, use_target, n, classes);
        if (label == -2) atomicAdd(bad, 1ULL);
        base[n] = xf_moved_loss(a2n, 0.0, 0, -1, label, target + n * classes, classes);
    }
}

__device__ void xf_numgrad_params(const double* x, const double* a1, const double* z1,
                                  const double* a2, const double* W2, const double* base,
                                  const long long* labels, const double* target,
                                  double* grad, long long rows, long long inputs,
                                  long long hidden, long long classes,
                                  long long use_target, long long sigmoid, double step,
                                  double scale) {
    long long first = (inputs + 1) * hidden;  // W1 then b1 (an input of 1)
    long long items = first + (hidden + 1) * classes;  // W2 then b2
    for (long long k = xf_first(); k < items; k += xf_stride()) {
        double acc = 0;
        if (k < first) {
            long long i = k / hidden, j = k - (k / hidden) * hidden;
            const double* w = W2 + j * classes;
            for (long long n = 0; n < rows; ++n) {
                double v = i < inputs ? x[n * inputs + i] : 1.0;
                if (v == 0) continue;
                double a = a1[n * hidden + j], z = z1[n * hidden + j];
                double shift = v * step;
                long long label = xf_sample_label(labels, use_target, n, classes);
                const double* tn = target + n * classes;
                const double* a2n = a2 + n * classes;
                double dz_plus = xf_activate(a + shift, sigmoid) - z;
                double dz_minus = xf_activate(a - shift, sigmoid) - z;
                double plus = dz_plus == 0
                                  ? base[n]
                                  : xf_moved_loss(a2n, dz_plus, w, -1, label, tn, classes);
                double minus =
                    dz_minus == 0 ? base[n]
                                  : xf_moved_loss(a2n, dz_minus, w, -1, label, tn, classes);
                acc += plus - minus;
            }
        } else {
            long long k2 = k - first;
            long long j = k2 / classes, c = k2 - (k2 / classes) * classes;
            for (long long n = 0; n < rows; ++n) {
                double shift = j < hidden ? z1[n * hidden + j] * step : step;
                if (shift == 0) continue;  // a silent unit moves no score
                long long label = xf_sample_label(labels, use_target, n, classes);
                const double* tn = target + n * classes;
                const double* a2n = a2 + n * classes;
                double plus = xf_moved_loss(a2n, shift, 0, c, label, tn, classes);
                double minus = xf_moved_loss(a2n, -shift, 0, c, label, tn, classes);
                acc += plus - minus;
            }
        }
        grad[k] = acc * scale;
    }
}

extern "C" __global__ void numgrad_forward_f64(
    double* h, const double* b1, const double* W2, const double* b2,
    const long long* labels, const double* target, double* z1, double* a2,
    double* base, unsigned long long* bad, long long rows, long long hidden,
    long long classes, long long use_target, long long sigmoid) {
    xf_numgrad_forward(h, b1, W2, b2, labels, target, z1, a2, base, bad, rows, hidden,
                       classes, use_target, sigmoid);
}

extern "C" __global__ void numgrad_params_f64(
    const double* x, const double* a1, const double* z1, const double* a2,
    const double* W2, const double* base, const long long* labels,
    const double* target, double* grad, long long rows, long long inputs,
    long long hidden, long long classes, long long use_target, long long sigmoid,
    double step, double scale) {
    xf_numgrad_params(x, a1, z1, a2, W2, base, labels, target, grad, rows, inputs,
                      hidden, classes, use_target, sigmoid, step, scale);
}
