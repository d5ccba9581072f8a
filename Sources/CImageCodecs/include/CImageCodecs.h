/*
 * CImageCodecs: thin wrappers around libpng, libjpeg and zlib for `gen`.
 *
 * Every entry point takes an in-memory byte buffer (the Swift side reads the file), returns a
 * `cimg_status` code, and on failure writes a NUL-terminated human-readable reason into the
 * caller's `msg` buffer (may be NULL). libpng/libjpeg error handling (setjmp/longjmp) never
 * leaves this target: no entry point longjmps across its boundary, aborts, or exits.
 *
 * Pixel layout everywhere: interleaved, row-major, top row first (HWC), no row padding.
 * 16-bit samples are native-endian uint16_t.
 */
#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status codes returned by every entry point. */
typedef enum {
    CIMG_OK = 0,
    CIMG_ERR_UNSUPPORTED = 1,   /**< recognised but unsupported format or feature */
    CIMG_ERR_CORRUPT = 2,       /**< truncated or corrupt data (including libjpeg warnings and bad CRCs) */
    CIMG_ERR_TOO_LARGE = 3,     /**< declared dimensions exceed the caller's pixel limit */
    CIMG_ERR_ARGUMENT = 4,      /**< bad argument (buffer too small, wrong channel count, ...) */
    CIMG_ERR_NOMEM = 5,         /**< allocation failed */
    CIMG_ERR_UNKNOWN_FORMAT = 6 /**< bytes are not a format this library decodes */
} cimg_status;

/** Container formats recognised by magic bytes. */
typedef enum {
    CIMG_FORMAT_UNKNOWN = 0,
    CIMG_FORMAT_PNG = 1,
    CIMG_FORMAT_JPEG = 2,
    CIMG_FORMAT_GIF = 3,
    CIMG_FORMAT_BMP = 4,
    CIMG_FORMAT_WEBP = 5,
    CIMG_FORMAT_TIFF = 6,
    CIMG_FORMAT_GZIP = 7,
    CIMG_FORMAT_JPEG2000 = 8,
    CIMG_FORMAT_HEIF = 9,
    CIMG_FORMAT_AVIF = 10,
    CIMG_FORMAT_ICO = 11,
    CIMG_FORMAT_PSD = 12,
    CIMG_FORMAT_QOI = 13,
    CIMG_FORMAT_PNM = 14,
    CIMG_FORMAT_EMPTY = 15
} cimg_format;

/** Colour model of the stored data (before any conversion). */
typedef enum {
    CIMG_COLOR_GRAY = 0,
    CIMG_COLOR_GRAY_ALPHA = 1,
    CIMG_COLOR_RGB = 2,
    CIMG_COLOR_RGBA = 3,
    CIMG_COLOR_PALETTE = 4,
    CIMG_COLOR_YCBCR = 5,
    CIMG_COLOR_CMYK = 6,
    CIMG_COLOR_YCCK = 7
} cimg_color;

/**
 * Header information, filled by `cimg_read_info` and `cimg_decode`.
 * `width`/`height` are the stored dimensions; `out_width`/`out_height` are the upright
 * dimensions after EXIF orientation (swapped for orientations 5..8).
 * `channels` and `bytes_per_sample` describe what `cimg_decode` writes:
 *   channels 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA); palettes are expanded to RGB, or
 *   RGBA when they carry tRNS; gray/RGB with a tRNS colour key gets an alpha channel; JPEG
 *   CMYK/YCCK is converted to RGB; low-bit gray (1/2/4) is scaled to 8 bits.
 *   Samples are 2 bytes only for 16-bit PNGs decoded with `want16` set, else 1
 *   (see cimg_bytes_per_sample).
 */
typedef struct {
    int format;          /**< cimg_format */
    uint32_t width;      /**< stored width in pixels */
    uint32_t height;     /**< stored height in pixels */
    uint32_t out_width;  /**< width after orientation */
    uint32_t out_height; /**< height after orientation */
    int color;           /**< cimg_color of the stored data */
    int bit_depth;       /**< stored bits per sample (1, 2, 4, 8, 16) */
    int stored_channels; /**< stored components (palette counts 1, JPEG CMYK 4) */
    int channels;        /**< channels cimg_decode outputs (1..4) */
    int has_alpha;       /**< 1 when the decoded output carries alpha */
    int interlaced;      /**< PNG Adam7 */
    int progressive;     /**< JPEG progressive (or other multi-scan) */
    int adobe_inverted;  /**< JPEG CMYK/YCCK with an Adobe APP14 marker (inverted data) */
    int orientation;     /**< EXIF orientation 1..8 (1 when absent or invalid) */
} cimg_info;

/** Returns the format indicated by the first bytes of `data` (CIMG_FORMAT_EMPTY for size 0). */
int cimg_detect_format(const uint8_t *data, size_t size);

/** Short name of a cimg_format ("PNG", "JPEG", "GIF", ...). Static storage. */
const char *cimg_format_name(int format);

/**
 * Reads only the header (PNG: up to the first IDAT; JPEG: up to SOS, including APP markers)
 * and fills `info` with `want16` = 1 semantics. Allocates no pixel buffer.
 */
int cimg_read_info(const uint8_t *data, size_t size, cimg_info *info, char *msg, size_t msg_size);

/**
 * Decodes the whole image into `out` (caller-allocated, `out_size` bytes), upright (EXIF
 * orientation applied), with `info->channels` channels of `info->bytes_per_sample` bytes.
 * Required size: out_width * out_height * channels * (16-bit && want16 ? 2 : 1).
 * `max_pixels` > 0 refuses images whose width*height exceeds it (CIMG_ERR_TOO_LARGE) before
 * any pixel allocation. Any libpng error, bad CRC, libjpeg error or warning is CIMG_ERR_CORRUPT.
 */
int cimg_decode(const uint8_t *data, size_t size, int want16, uint64_t max_pixels,
                void *out, size_t out_size, cimg_info *info, char *msg, size_t msg_size);

/** Bytes per sample `cimg_decode` writes for `info` (2 for 16-bit PNG with want16, else 1). */
int cimg_bytes_per_sample(const cimg_info *info, int want16);

/**
 * Converts interleaved 8-bit (`bits` 8) or 16-bit (`bits` 16) samples with `src_ch` channels
 * (1..4; 2 and 4 carry alpha last) to float with `dst_ch` channels (1 or 3, or 4 / 2 keeping
 * alpha), writing value*scale + offset where value is in [0,1] (v/255 or v/65535).
 * Alpha rule (when dst has no alpha): composite onto `background` in [0,1]:
 *   out = c*a + background*(1-a), so opaque pixels keep their exact colour.
 * Gray -> RGB copies the value; RGB -> gray uses luma 0.299 R + 0.587 G + 0.114 B.
 */
int cimg_to_float(const void *src, int bits, size_t npixels, int src_ch, int dst_ch,
                  float background, float scale, float offset, float *dst);

/**
 * Converts floats (value = (x - offset) / scale mapped from [0,1]) to 8- or 16-bit samples with
 * rounding and clamping; same channel count in and out. NaN becomes 0.
 */
int cimg_from_float(const float *src, size_t count, float scale, float offset, int bits, void *dst);

/** Resampling filters for `cimg_resize`. */
typedef enum {
    CIMG_FILTER_BOX = 0,      /**< area averaging (antialiased shrinking) */
    CIMG_FILTER_BILINEAR = 1, /**< triangle; widened when shrinking */
    CIMG_FILTER_BICUBIC = 2,  /**< Keys cubic, a = -0.5; widened when shrinking */
    CIMG_FILTER_LANCZOS3 = 3  /**< Lanczos, 3 lobes; widened when shrinking */
} cimg_filter;

/**
 * Separable resize of a float HWC image (any channel count >= 1), `filter_x` horizontally and
 * `filter_y` vertically (cimg_filter). The filter support is scaled by the reduction factor
 * when shrinking, so every filter antialiases. Output is not clamped (bicubic/Lanczos may
 * overshoot slightly); callers clamp when encoding.
 */
int cimg_resize(const float *src, int sw, int sh, int ch, float *dst, int dw, int dh, int filter_x, int filter_y);

/** Encoded output owned by the library; release with `cimg_buffer_free`. */
typedef struct {
    uint8_t *data;
    size_t size;
} cimg_buffer;

/** Frees a buffer returned by an encoder (safe on a zeroed buffer). */
void cimg_buffer_free(cimg_buffer *buf);

/**
 * Encodes a PNG. `color` is a PNG colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA)
 * and `bit_depth` one the PNG standard allows for it. `pixels` holds packed rows as the PNG
 * stores them: for depth < 8 samples packed MSB first with rows padded to a byte; for 16-bit,
 * native-endian uint16_t (swapped to big-endian here). `palette` (RGB triplets, `palette_count`
 * entries) is for colour type 3; `trns` (`trns_count` bytes) sets tRNS: palette alphas for type 3,
 * or a 16-bit colour key (1 value for gray, 3 for RGB) given as uint16_t for types 0/2.
 * `interlace` 1 writes Adam7.
 */
int cimg_png_encode(const void *pixels, uint32_t width, uint32_t height, int color, int bit_depth,
                    int interlace, const uint8_t *palette, int palette_count,
                    const void *trns, int trns_count, cimg_buffer *out, char *msg, size_t msg_size);

/**
 * Encodes a baseline (or progressive) JPEG from 8-bit samples. `components` 1 (gray), 3 (RGB),
 * or 4 (CMYK as given; written with an Adobe marker; `ycck` 1 stores it as YCCK). `quality` 1..100.
 */
int cimg_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int components,
                     int quality, int progressive, int ycck, cimg_buffer *out,
                     char *msg, size_t msg_size);

/**
 * Decompresses gzip or zlib data (auto-detected) into a new buffer. Fails with CIMG_ERR_CORRUPT
 * on a truncated or corrupt stream and CIMG_ERR_TOO_LARGE when the output would exceed
 * `max_size` bytes.
 */
int cimg_gunzip(const uint8_t *data, size_t size, size_t max_size, cimg_buffer *out,
                char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif
#endif
