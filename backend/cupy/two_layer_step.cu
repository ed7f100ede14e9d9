// The fused SGD step of TwoLayerNet on the CuPy backend: two kernels between
// and after the two cuBLAS products (backend/cupy/fused.py launches them).
//
//   h  = x @ W1                                  cuBLAS
//   step_rows:   h <- z = act(h + b1), scores, softmax, the row losses,
//                dy = (y - t) / N, da1 = (dy @ W2.T) * act'(z)
//   W1 = W1 - lr * x.T @ da1                     cuBLAS (alpha = -lr, beta = 1)
//   step_update: W2, b1, b2 -= lr * their gradients (sums over the batch),
//                loss = mean of the row losses
//
// step_rows runs one thread per row of the batch, step_update one thread per
// parameter of W2, b1 and b2 (plus one for the loss); threads never cooperate.
// At chapter 5's sizes a row is 50 x 10 multiply-adds each way, which one
// thread does in about the time of a launch. Layouts are C-contiguous:
// h, z, da1 (N, H); dy, onehot (N, C); W2 (H, C). The row losses are kept in
// double and their mean is taken in double, as the Numba step does.

// Row i: everything of the step that needs only row i of the batch.
template <typename T>
__device__ void xf_step_row(long long i, T* h, const T* b1, const T* W2, const T* b2,
                            const long long* labels, const T* onehot, T* dy, T* da1,
                            double* loss_rows, long long hidden, long long classes,
                            long long use_onehot, long long sigmoid, T inv_n) {
    T* hi = h + i * hidden;
    T* dyi = dy + i * classes;
    T* dai = da1 + i * hidden;
    for (long long j = 0; j < hidden; ++j) hi[j] = xf_activate(hi[j] + b1[j], sigmoid);
    // Scores z @ W2 + b2 (the product first, then the bias, as the layers add it).
    for (long long c = 0; c < classes; ++c) {
        T acc = 0;
        for (long long j = 0; j < hidden; ++j) acc += hi[j] * W2[j * classes + c];
        dyi[c] = acc + b2[c];
    }
    // Softmax with the row maximum subtracted; a NaN score makes the row NaN.
    T m = dyi[0];
    for (long long c = 1; c < classes; ++c) m = dyi[c] > m ? dyi[c] : m;
    T s = 0;
    for (long long c = 0; c < classes; ++c) {
        dyi[c] = xf_exp(dyi[c] - m);
        s += dyi[c];
    }
    for (long long c = 0; c < classes; ++c) dyi[c] = dyi[c] / s;
    double loss = 0;
    if (use_onehot) {
        const T* ti = onehot + i * classes;
        for (long long c = 0; c < classes; ++c) {
            loss -= (double)(ti[c] * xf_log(dyi[c] + (T)XPNET_CE_DELTA));
            dyi[c] = (dyi[c] - ti[c]) * inv_n;
        }
    } else {
        long long label = xf_label(labels[i], classes);
        if (label < 0) {
            // A kernel cannot raise: the loss says NaN and the row adds nothing.
            loss = (double)xf_nan<T>();
            for (long long c = 0; c < classes; ++c) dyi[c] = 0;
        } else {
            loss = -(double)xf_log(dyi[label] + (T)XPNET_CE_DELTA);
            for (long long c = 0; c < classes; ++c) {
                T hit = c == label ? (T)1 : (T)0;
                dyi[c] = (dyi[c] - hit) * inv_n;
            }
        }
    }
    loss_rows[i] = loss;
    // Back through the second affine layer and the activation.
    for (long long j = 0; j < hidden; ++j) {
        T acc = 0;
        for (long long c = 0; c < classes; ++c) acc += dyi[c] * W2[j * classes + c];
        T z = hi[j];
        if (sigmoid) {
            dai[j] = acc * ((T)1 - z) * z;
        } else {
            dai[j] = z == 0 ? (T)0 : acc;  // blocked where a <= 0, i.e. where z is 0
        }
    }
}

template <typename T>
__device__ void xf_step_rows(T* h, const T* b1, const T* W2, const T* b2,
                             const long long* labels, const T* onehot, T* dy, T* da1,
                             double* loss_rows, long long rows, long long hidden,
                             long long classes, long long use_onehot, long long sigmoid,
                             T inv_n) {
    for (long long i = xf_first(); i < rows; i += xf_stride()) {
        xf_step_row(i, h, b1, W2, b2, labels, onehot, dy, da1, loss_rows, hidden,
                    classes, use_onehot, sigmoid, inv_n);
    }
}

// Items 0 .. H*C-1: W2[j, c]; then H items b1[j]; then C items b2[c]; then one
// item for the mean loss. Each sums its gradient over the rows in T, as a
// product or a sum over the batch would, and updates its parameter in place.
template <typename T>
__device__ void xf_step_update(const T* z, const T* dy, const T* da1,
                               const double* loss_rows, T* W2, T* b1, T* b2, T* loss,
                               long long rows, long long hidden, long long classes,
                               T lr) {
    long long n_w2 = hidden * classes;
    long long items = n_w2 + hidden + classes + 1;
    for (long long k = xf_first(); k < items; k += xf_stride()) {
        if (k < n_w2) {
            long long j = k / classes, c = k - (k / classes) * classes;
            T g = 0;
            for (long long i = 0; i < rows; ++i) g += z[i * hidden + j] * dy[i * classes + c];
            W2[k] -= lr * g;
        } else if (k < n_w2 + hidden) {
            long long j = k - n_w2;
            T g = 0;
            for (long long i = 0; i < rows; ++i) g += da1[i * hidden + j];
            b1[j] -= lr * g;
        } else if (k < n_w2 + hidden + classes) {
            long long c = k - n_w2 - hidden;
            T g = 0;
            for (long long i = 0; i < rows; ++i) g += dy[i * classes + c];
            b2[c] -= lr * g;
        } else {
            double total = 0;
            for (long long i = 0; i < rows; ++i) total += loss_rows[i];
            loss[0] = (T)(total / (double)rows);
        }
    }
}

#define XF_STEP(T, SUFFIX)                                                         \
    extern "C" __global__ void step_rows_##SUFFIX(                                 \
        T* h, const T* b1, const T* W2, const T* b2, const long long* labels,      \
        const T* onehot, T* dy, T* da1, double* loss_rows, long long rows,         \
        long long hidden, long long classes, long long use_onehot,                 \
        long long sigmoid, T inv_n) {                                              \
        xf_step_rows<T>(h, b1, W2, b2, labels, onehot, dy, da1, loss_rows, rows,   \
                        hidden, classes, use_onehot, sigmoid, inv_n);              \
    }                                                                              \
    extern "C" __global__ void step_update_##SUFFIX(                               \
        const T* z, const T* dy, const T* da1, const double* loss_rows, T* W2,     \
        T* b1, T* b2, T* loss, long long rows, long long hidden, long long classes, \
        T lr) {                                                                    \
        xf_step_update<T>(z, dy, da1, loss_rows, W2, b1, b2, loss, rows, hidden,   \
                          classes, lr);                                            \
    }

XF_STEP(float, f32)
XF_STEP(double, f64)
