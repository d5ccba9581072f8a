/* Format detection, dispatch, orientation and sample conversion. */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cimg_fail(int status, char *msg, size_t msg_size, const char *fmt, ...) {
    if (msg && msg_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_size, fmt, ap);
        va_end(ap);
    }
    return status;
}

int cimg_detect_format(const uint8_t *d, size_t n) {
    if (!d || n == 0) return CIMG_FORMAT_EMPTY;
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return CIMG_FORMAT_PNG;
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return CIMG_FORMAT_JPEG;
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0)) return CIMG_FORMAT_GIF;
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return CIMG_FORMAT_WEBP;
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0)) return CIMG_FORMAT_TIFF;
    if (n >= 2 && d[0] == 0x1F && d[1] == 0x8B) return CIMG_FORMAT_GZIP;
    if (n >= 12 && memcmp(d, "\0\0\0\x0CjP  \r\n\x87\n", 12) == 0) return CIMG_FORMAT_JPEG2000;
    if (n >= 4 && d[0] == 0xFF && d[1] == 0x4F && d[2] == 0xFF && d[3] == 0x51) return CIMG_FORMAT_JPEG2000;
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0) {
        if (memcmp(d + 8, "avif", 4) == 0 || memcmp(d + 8, "avis", 4) == 0) return CIMG_FORMAT_AVIF;
        if (memcmp(d + 8, "heic", 4) == 0 || memcmp(d + 8, "heix", 4) == 0 ||
            memcmp(d + 8, "mif1", 4) == 0 || memcmp(d + 8, "msf1", 4) == 0 ||
            memcmp(d + 8, "hevc", 4) == 0) return CIMG_FORMAT_HEIF;
    }
    if (n >= 4 && memcmp(d, "8BPS", 4) == 0) return CIMG_FORMAT_PSD;
    if (n >= 4 && memcmp(d, "qoif", 4) == 0) return CIMG_FORMAT_QOI;
    if (n >= 6 && d[0] == 0 && d[1] == 0 && (d[2] == 1 || d[2] == 2) && d[3] == 0 && (d[4] | d[5])) return CIMG_FORMAT_ICO;
    if (n >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7' && (d[2] == '\n' || d[2] == ' ' || d[2] == '\r' || d[2] == '\t'))
        return CIMG_FORMAT_PNM;
    if (n >= 14 && d[0] == 'B' && d[1] == 'M') {
        /* BMP: "BM", then the pixel-data offset at 10 and a known DIB header size at 14. */
        uint32_t hs = n >= 18 ? (uint32_t)d[14] | (uint32_t)d[15] << 8 | (uint32_t)d[16] << 16 | (uint32_t)d[17] << 24 : 40;
        if (hs == 12 || hs == 16 || hs == 40 || hs == 52 || hs == 56 || hs == 64 || hs == 108 || hs == 124)
            return CIMG_FORMAT_BMP;
    }
    return CIMG_FORMAT_UNKNOWN;
}

const char *cimg_format_name(int format) {
    switch (format) {
    case CIMG_FORMAT_PNG: return "PNG";
    case CIMG_FORMAT_JPEG: return "JPEG";
    case CIMG_FORMAT_GIF: return "GIF";
    case CIMG_FORMAT_BMP: return "BMP";
    case CIMG_FORMAT_WEBP: return "WebP";
    case CIMG_FORMAT_TIFF: return "TIFF";
    case CIMG_FORMAT_GZIP: return "gzip";
    case CIMG_FORMAT_JPEG2000: return "JPEG 2000";
    case CIMG_FORMAT_HEIF: return "HEIF";
    case CIMG_FORMAT_AVIF: return "AVIF";
    case CIMG_FORMAT_ICO: return "ICO";
    case CIMG_FORMAT_PSD: return "PSD";
    case CIMG_FORMAT_QOI: return "QOI";
    case CIMG_FORMAT_PNM: return "PNM";
    case CIMG_FORMAT_EMPTY: return "empty";
    default: return "unknown";
    }
}

static int unsupported(const uint8_t *data, size_t size, char *msg, size_t msg_size) {
    int f = cimg_detect_format(data, size);
    if (f == CIMG_FORMAT_EMPTY) return cimg_fail(CIMG_ERR_UNKNOWN_FORMAT, msg, msg_size, "empty file (0 bytes)");
    if (f == CIMG_FORMAT_UNKNOWN) return cimg_fail(CIMG_ERR_UNKNOWN_FORMAT, msg, msg_size, "not an image");
    return cimg_fail(CIMG_ERR_UNSUPPORTED, msg, msg_size, "unsupported format %s", cimg_format_name(f));
}

int cimg_read_info(const uint8_t *data, size_t size, cimg_info *info, char *msg, size_t msg_size) {
    if (!info) return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "info is NULL");
    memset(info, 0, sizeof *info);
    if (msg && msg_size) msg[0] = 0;
    switch (cimg_detect_format(data, size)) {
    case CIMG_FORMAT_PNG: return cimg_png_info(data, size, info, msg, msg_size);
    case CIMG_FORMAT_JPEG: return cimg_jpeg_info(data, size, info, msg, msg_size);
    default: return unsupported(data, size, msg, msg_size);
    }
}

int cimg_bytes_per_sample(const cimg_info *info, int want16) {
    return (info && info->format == CIMG_FORMAT_PNG && info->bit_depth == 16 && want16) ? 2 : 1;
}

int cimg_decode(const uint8_t *data, size_t size, int want16, uint64_t max_pixels,
                void *out, size_t out_size, cimg_info *info, char *msg, size_t msg_size) {
    cimg_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    if (msg && msg_size) msg[0] = 0;
    if (!out) return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "output buffer is NULL");
    switch (cimg_detect_format(data, size)) {
    case CIMG_FORMAT_PNG: return cimg_png_decode(data, size, want16, max_pixels, out, out_size, info, msg, msg_size);
    case CIMG_FORMAT_JPEG: return cimg_jpeg_decode(data, size, max_pixels, out, out_size, info, msg, msg_size);
    default: return unsupported(data, size, msg, msg_size);
    }
}

void cimg_orient(const uint8_t *src, uint32_t w, uint32_t h, size_t bpp, int o, uint8_t *dst) {
    if (o < 1 || o > 8 || o == 1) {
        memcpy(dst, src, (size_t)w * h * bpp);
        return;
    }
    /* Output dimensions: swapped for 5..8. For each output pixel (x', y') pick the stored pixel. */
    uint32_t ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;
    for (uint32_t yo = 0; yo < oh; yo++) {
        uint8_t *drow = dst + (size_t)yo * ow * bpp;
        for (uint32_t xo = 0; xo < ow; xo++) {
            uint32_t xs, ys;
            switch (o) {
            case 2: xs = w - 1 - xo; ys = yo; break;
            case 3: xs = w - 1 - xo; ys = h - 1 - yo; break;
            case 4: xs = xo; ys = h - 1 - yo; break;
            case 5: xs = yo; ys = xo; break;
            case 6: xs = yo; ys = h - 1 - xo; break;
            case 7: xs = w - 1 - yo; ys = h - 1 - xo; break;
            default: /* 8 */ xs = w - 1 - yo; ys = xo; break;
            }
            memcpy(drow + (size_t)xo * bpp, src + ((size_t)ys * w + xs) * bpp, bpp);
        }
    }
}

/* ---- sample conversion ---------------------------------------------------------------- */

#define LUMA(r, g, b) (0.299f * (r) + 0.587f * (g) + 0.114f * (b))

#define CONVERT_LOOP(T, NORM)                                                                   \
    do {                                                                                        \
        const T *s = (const T *)src;                                                           \
        const float bg = background;                                                            \
        if (src_ch == 1 && dst_ch == 1) {                                                       \
            for (size_t i = 0; i < n; i++) dst[i] = NORM(s[i]) * scale + offset;               \
        } else if (src_ch == 1 && dst_ch == 3) {                                                \
            for (size_t i = 0; i < n; i++) {                                                    \
                float v = NORM(s[i]) * scale + offset;                                          \
                dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v;                         \
            }                                                                                   \
        } else if (src_ch == 2 && (dst_ch == 1 || dst_ch == 3)) {                               \
            for (size_t i = 0; i < n; i++) {                                                    \
                float a = NORM(s[2 * i + 1]);                                                   \
                float v = a >= 1.0f ? NORM(s[2 * i]) : NORM(s[2 * i]) * a + bg * (1.0f - a);    \
                v = v * scale + offset;                                                         \
                if (dst_ch == 1) dst[i] = v;                                                    \
                else { dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v; }                \
            }                                                                                   \
        } else if (src_ch == 3 && dst_ch == 3) {                                                \
            for (size_t i = 0; i < 3 * n; i++) dst[i] = NORM(s[i]) * scale + offset;           \
        } else if (src_ch == 3 && dst_ch == 1) {                                                \
            for (size_t i = 0; i < n; i++)                                                      \
                dst[i] = LUMA(NORM(s[3 * i]), NORM(s[3 * i + 1]), NORM(s[3 * i + 2])) * scale + offset; \
        } else if (src_ch == 4 && (dst_ch == 3 || dst_ch == 1)) {                               \
            for (size_t i = 0; i < n; i++) {                                                    \
                float a = NORM(s[4 * i + 3]);                                                   \
                float r = NORM(s[4 * i]), g = NORM(s[4 * i + 1]), b = NORM(s[4 * i + 2]);       \
                if (a < 1.0f) {                                                                 \
                    r = r * a + bg * (1.0f - a); g = g * a + bg * (1.0f - a); b = b * a + bg * (1.0f - a); \
                }                                                                               \
                if (dst_ch == 3) {                                                              \
                    dst[3 * i] = r * scale + offset; dst[3 * i + 1] = g * scale + offset;       \
                    dst[3 * i + 2] = b * scale + offset;                                        \
                } else dst[i] = LUMA(r, g, b) * scale + offset;                                 \
            }                                                                                   \
        } else if (src_ch == dst_ch) {                                                          \
            for (size_t i = 0; i < (size_t)src_ch * n; i++) dst[i] = NORM(s[i]) * scale + offset; \
        } else if (src_ch == 1 && dst_ch == 4) {                                                \
            for (size_t i = 0; i < n; i++) {                                                    \
                float v = NORM(s[i]) * scale + offset;                                          \
                dst[4 * i] = v; dst[4 * i + 1] = v; dst[4 * i + 2] = v; dst[4 * i + 3] = scale + offset; \
            }                                                                                   \
        } else if (src_ch == 3 && dst_ch == 4) {                                                \
            for (size_t i = 0; i < n; i++) {                                                    \
                for (int c = 0; c < 3; c++) dst[4 * i + c] = NORM(s[3 * i + c]) * scale + offset; \
                dst[4 * i + 3] = scale + offset;                                                \
            }                                                                                   \
        } else if (src_ch == 2 && dst_ch == 4) {                                                \
            for (size_t i = 0; i < n; i++) {                                                    \
                float v = NORM(s[2 * i]) * scale + offset;                                      \
                dst[4 * i] = v; dst[4 * i + 1] = v; dst[4 * i + 2] = v;                         \
                dst[4 * i + 3] = NORM(s[2 * i + 1]) * scale + offset;                           \
            }                                                                                   \
        } else return CIMG_ERR_ARGUMENT;                                                        \
    } while (0)

static float lut8[256];
static pthread_once_t lut8_once = PTHREAD_ONCE_INIT;

static void init_lut8(void) {
    for (int i = 0; i < 256; i++) lut8[i] = (float)i / 255.0f; /* 255 -> exactly 1.0f */
}

#define NORM8(v) (lut8[(v)])
#define NORM16(v) ((float)(v) * (1.0f / 65535.0f))

int cimg_to_float(const void *src, int bits, size_t n, int src_ch, int dst_ch,
                  float background, float scale, float offset, float *dst) {
    if (!src || !dst || src_ch < 1 || src_ch > 4 || dst_ch < 1 || dst_ch > 4) return CIMG_ERR_ARGUMENT;
    if (bits == 8) {
        pthread_once(&lut8_once, init_lut8);
        CONVERT_LOOP(uint8_t, NORM8);
    } else if (bits == 16) {
        CONVERT_LOOP(uint16_t, NORM16);
    } else return CIMG_ERR_ARGUMENT;
    return CIMG_OK;
}

int cimg_from_float(const float *src, size_t count, float scale, float offset, int bits, void *dst) {
    if (!src || !dst || scale == 0.0f) return CIMG_ERR_ARGUMENT;
    const float inv = 1.0f / scale;
    if (bits == 8) {
        uint8_t *d = (uint8_t *)dst;
        for (size_t i = 0; i < count; i++) {
            float v = (src[i] - offset) * inv * 255.0f + 0.5f;
            d[i] = v >= 255.0f ? 255 : (v > 0.0f ? (uint8_t)v : 0); /* NaN -> 0 */
        }
    } else if (bits == 16) {
        uint16_t *d = (uint16_t *)dst;
        for (size_t i = 0; i < count; i++) {
            float v = (src[i] - offset) * inv * 65535.0f + 0.5f;
            d[i] = v >= 65535.0f ? 65535 : (v > 0.0f ? (uint16_t)v : 0);
        }
    } else return CIMG_ERR_ARGUMENT;
    return CIMG_OK;
}

/* ---- resampling --------------------------------------------------------------------------- */

static double filt_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
static double filt_tri(double x) { x = fabs(x); return x < 1.0 ? 1.0 - x : 0.0; }
static double filt_cubic(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}
static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return sin(x) / x;
}
static double filt_lanczos(double x) { return (x > -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0; }

/* Precomputes per-output-coordinate windows: bounds[2*i] = start, bounds[2*i+1] = count. */
static int make_weights(int in, int out, int filter, int **bounds_out, float **weights_out, int *ksize_out) {
    double (*f)(double);
    double support;
    switch (filter) {
    case CIMG_FILTER_BOX: f = filt_box; support = 0.5; break;
    case CIMG_FILTER_BILINEAR: f = filt_tri; support = 1.0; break;
    case CIMG_FILTER_BICUBIC: f = filt_cubic; support = 2.0; break;
    case CIMG_FILTER_LANCZOS3: f = filt_lanczos; support = 3.0; break;
    default: return CIMG_ERR_ARGUMENT;
    }
    double scale = (double)in / out;
    double fscale = scale < 1.0 ? 1.0 : scale;
    support *= fscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int *bounds = malloc(sizeof(int) * 2 * (size_t)out);
    float *w = malloc(sizeof(float) * (size_t)ksize * out);
    if (!bounds || !w) { free(bounds); free(w); return CIMG_ERR_NOMEM; }
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)floor(center - support + 0.5);
        int hi = (int)floor(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        if (hi - lo > ksize) hi = lo + ksize;
        double sum = 0.0;
        float *wi = w + (size_t)i * ksize;
        for (int j = lo; j < hi; j++) {
            double v = f((j - center + 0.5) / fscale);
            wi[j - lo] = (float)v;
            sum += v;
        }
        if (hi <= lo || sum == 0.0) { /* degenerate: nearest sample */
            int c = (int)center;
            if (c >= in) c = in - 1;
            if (c < 0) c = 0;
            lo = c; hi = c + 1; wi[0] = 1.0f; sum = 1.0;
        }
        bounds[2 * i] = lo;
        bounds[2 * i + 1] = hi - lo;
        for (int j = 0; j < hi - lo; j++) wi[j] = (float)(wi[j] / sum);
    }
    *bounds_out = bounds;
    *weights_out = w;
    *ksize_out = ksize;
    return CIMG_OK;
}

int cimg_resize(const float *src, int sw, int sh, int ch, float *dst, int dw, int dh, int filter_x, int filter_y) {
    if (!src || !dst || sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || ch <= 0) return CIMG_ERR_ARGUMENT;
    int *bx = NULL, *by = NULL, kx = 0, ky = 0;
    float *wx = NULL, *wy = NULL, *tmp = NULL;
    int rc = make_weights(sw, dw, filter_x, &bx, &wx, &kx);
    if (rc) return rc;
    rc = make_weights(sh, dh, filter_y, &by, &wy, &ky);
    if (rc) { free(bx); free(wx); return rc; }
    tmp = malloc(sizeof(float) * (size_t)sh * dw * ch);
    if (!tmp) { free(bx); free(wx); free(by); free(wy); return CIMG_ERR_NOMEM; }
    /* Horizontal pass: sh rows, sw -> dw. */
    for (int y = 0; y < sh; y++) {
        const float *srow = src + (size_t)y * sw * ch;
        float *trow = tmp + (size_t)y * dw * ch;
        for (int x = 0; x < dw; x++) {
            const float *k = wx + (size_t)x * kx;
            int lo = bx[2 * x], cnt = bx[2 * x + 1];
            for (int c = 0; c < ch; c++) {
                float acc = 0.0f;
                const float *p = srow + (size_t)lo * ch + c;
                for (int j = 0; j < cnt; j++) acc += k[j] * p[(size_t)j * ch];
                trow[(size_t)x * ch + c] = acc;
            }
        }
    }
    /* Vertical pass: row combinations, vectorisable over the whole row. */
    size_t rowlen = (size_t)dw * ch;
    for (int y = 0; y < dh; y++) {
        float *drow = dst + (size_t)y * rowlen;
        const float *k = wy + (size_t)y * ky;
        int lo = by[2 * y], cnt = by[2 * y + 1];
        for (size_t i = 0; i < rowlen; i++) drow[i] = 0.0f;
        for (int j = 0; j < cnt; j++) {
            const float *trow = tmp + (size_t)(lo + j) * rowlen;
            float kj = k[j];
            for (size_t i = 0; i < rowlen; i++) drow[i] += kj * trow[i];
        }
    }
    free(tmp); free(bx); free(wx); free(by); free(wy);
    return CIMG_OK;
}

void cimg_buffer_free(cimg_buffer *buf) {
    if (!buf) return;
    free(buf->data);
    buf->data = NULL;
    buf->size = 0;
}
