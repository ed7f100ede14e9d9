// The batch gather of the CuPy backend's training step: one launch turns
// uint8 pixels on the device into the (rows, cols) float batch.
//
// out[r, c] = (T)((float)images[idx[r], c] / scale): the division runs in
// float32 and its quotient is then cast, bit for bit what
// Backend.scaled_rows (xp.divide(..., dtype=float32)) gives, which is what
// load_mnist(normalize=True) gives. Indices outside [0, n_images) wrap
// around, as CuPy's fancy indexing does (-1 is the last image).
// One thread per output element, grid-stride; threads never cooperate.

template <typename T>
__device__ void xf_gather_scaled(const unsigned char* images, const long long* idx,
                                 T* out, long long rows, long long cols,
                                 long long n_images, float scale) {
    long long total = rows * cols;
    for (long long k = xf_first(); k < total; k += xf_stride()) {
        long long r = k / cols;
        long long c = k - r * cols;
        long long image = idx[r] % n_images;
        if (image < 0) image += n_images;
        out[k] = (T)((float)images[image * cols + c] / scale);
    }
}

#define XF_GATHER(T, SUFFIX)                                                       \
    extern "C" __global__ void gather_scaled_u8_##SUFFIX(                          \
        const unsigned char* images, const long long* idx, T* out, long long rows, \
        long long cols, long long n_images, float scale) {                         \
        xf_gather_scaled<T>(images, idx, out, rows, cols, n_images, scale);        \
    }

XF_GATHER(float, f32)
XF_GATHER(double, f64)
