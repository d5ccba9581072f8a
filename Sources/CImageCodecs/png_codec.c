/* PNG decode/encode through libpng. All setjmp/longjmp handling stays in this file. */
#include "internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    char *msg;
    size_t msg_size;
    int have_msg;
} png_reader;

static void png_err_fn(png_structp png, png_const_charp text) {
    png_reader *r = (png_reader *)png_get_error_ptr(png);
    if (r && !r->have_msg) {
        cimg_fail(0, r->msg, r->msg_size, "truncated/corrupt PNG (%s)", text ? text : "libpng error");
        r->have_msg = 1;
    }
    png_longjmp(png, 1);
}

static void png_warn_fn(png_structp png, png_const_charp text) {
    (void)png; (void)text; /* ancillary-chunk warnings (e.g. sRGB profile notes) are not errors */
}

static void png_read_fn(png_structp png, png_bytep out, png_size_t len) {
    png_reader *r = (png_reader *)png_get_io_ptr(png);
    if (len > r->size - r->pos) {
        if (!r->have_msg) {
            cimg_fail(0, r->msg, r->msg_size, "truncated/corrupt PNG (file ends early: unexpected end of data at byte %zu)", r->size);
            r->have_msg = 1;
        }
        png_longjmp(png, 1);
    }
    memcpy(out, r->data + r->pos, len);
    r->pos += len;
}

static int color_of(int ct) {
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY: return CIMG_COLOR_GRAY;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return CIMG_COLOR_GRAY_ALPHA;
    case PNG_COLOR_TYPE_RGB: return CIMG_COLOR_RGB;
    case PNG_COLOR_TYPE_RGBA: return CIMG_COLOR_RGBA;
    default: return CIMG_COLOR_PALETTE;
    }
}

/* Fills info from an IHDR already read; sets the output channel layout. */
static void fill_info(png_structp png, png_infop pi, cimg_info *info) {
    png_uint_32 w = png_get_image_width(png, pi), h = png_get_image_height(png, pi);
    int ct = png_get_color_type(png, pi), bd = png_get_bit_depth(png, pi);
    int trns = png_get_valid(png, pi, PNG_INFO_tRNS) != 0;
    info->format = CIMG_FORMAT_PNG;
    info->width = w; info->height = h;
    info->out_width = w; info->out_height = h;
    info->color = color_of(ct);
    info->bit_depth = bd;
    info->interlaced = png_get_interlace_type(png, pi) != PNG_INTERLACE_NONE;
    info->orientation = 1;
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY: info->stored_channels = 1; info->channels = trns ? 2 : 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: info->stored_channels = 2; info->channels = 2; break;
    case PNG_COLOR_TYPE_RGB: info->stored_channels = 3; info->channels = trns ? 4 : 3; break;
    case PNG_COLOR_TYPE_RGBA: info->stored_channels = 4; info->channels = 4; break;
    default: info->stored_channels = 1; info->channels = trns ? 4 : 3; break;
    }
    info->has_alpha = info->channels == 2 || info->channels == 4;
}

static void setup(png_structp png) {
    /* Bad CRCs are errors in critical and ancillary chunks alike. */
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_set_user_limits(png, 0x7fffffffU, 0x7fffffffU);
}

int cimg_png_info(const uint8_t *data, size_t size, cimg_info *info, char *msg, size_t msg_size) {
    png_reader r = {data, size, 0, msg, msg_size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_err_fn, png_warn_fn);
    if (!png) return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "libpng: out of memory");
    png_infop pi = png_create_info_struct(png);
    if (!pi) {
        png_destroy_read_struct(&png, NULL, NULL);
        return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "libpng: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &pi, NULL);
        if (!r.have_msg) cimg_fail(0, msg, msg_size, "truncated/corrupt PNG");
        return CIMG_ERR_CORRUPT;
    }
    setup(png);
    png_set_read_fn(png, &r, png_read_fn);
    png_read_info(png, pi);
    fill_info(png, pi, info);
    png_destroy_read_struct(&png, &pi, NULL);
    return CIMG_OK;
}

int cimg_png_decode(const uint8_t *data, size_t size, int want16, uint64_t max_pixels,
                    void *out, size_t out_size, cimg_info *info, char *msg, size_t msg_size) {
    png_reader r = {data, size, 0, msg, msg_size, 0};
    png_bytep *volatile rows = NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_err_fn, png_warn_fn);
    if (!png) return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "libpng: out of memory");
    png_infop pi = png_create_info_struct(png);
    if (!pi) {
        png_destroy_read_struct(&png, NULL, NULL);
        return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "libpng: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_read_struct(&png, &pi, NULL);
        if (!r.have_msg) cimg_fail(0, msg, msg_size, "truncated/corrupt PNG");
        return CIMG_ERR_CORRUPT;
    }
    setup(png);
    png_set_read_fn(png, &r, png_read_fn);
    png_read_info(png, pi);
    fill_info(png, pi, info);

    uint64_t npix = (uint64_t)info->width * info->height;
    if (max_pixels > 0 && npix > max_pixels) {
        png_destroy_read_struct(&png, &pi, NULL);
        return cimg_fail(CIMG_ERR_TOO_LARGE, msg, msg_size,
                         "image declares %ux%u pixels (%llu), more than the limit of %llu pixels",
                         info->width, info->height, (unsigned long long)npix, (unsigned long long)max_pixels);
    }
    int bps = cimg_bytes_per_sample(info, want16);
    size_t rowbytes = (size_t)info->width * info->channels * bps;
    if (info->height == 0 || info->width == 0 || out_size / info->height < rowbytes) {
        png_destroy_read_struct(&png, &pi, NULL);
        return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "output buffer too small (%zu bytes)", out_size);
    }

    int ct = png_get_color_type(png, pi), bd = png_get_bit_depth(png, pi);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, pi, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bd == 16) {
        if (bps == 2) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            png_set_swap(png);
#endif
        } else {
            png_set_scale_16(png);
        }
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, pi);
    if (png_get_rowbytes(png, pi) != rowbytes || png_get_channels(png, pi) != info->channels) {
        png_destroy_read_struct(&png, &pi, NULL);
        return cimg_fail(CIMG_ERR_CORRUPT, msg, msg_size, "truncated/corrupt PNG (unexpected row layout)");
    }
    rows = malloc(sizeof(png_bytep) * info->height);
    if (!rows) {
        png_destroy_read_struct(&png, &pi, NULL);
        return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "out of memory");
    }
    for (uint32_t y = 0; y < info->height; y++) rows[y] = (png_bytep)out + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    rows = NULL;
    png_destroy_read_struct(&png, &pi, NULL);
    return CIMG_OK;
}

/* ---- encoder -------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t size, cap;
    int oom;
    char *msg;
    size_t msg_size;
} png_writer;

static void png_write_fn(png_structp png, png_bytep d, png_size_t len) {
    png_writer *w = (png_writer *)png_get_io_ptr(png);
    if (w->size + len > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->size + len) cap *= 2;
        uint8_t *nd = realloc(w->data, cap);
        if (!nd) { w->oom = 1; png_error(png, "out of memory"); }
        w->data = nd;
        w->cap = cap;
    }
    memcpy(w->data + w->size, d, len);
    w->size += len;
}

static void png_flush_fn(png_structp png) { (void)png; }

static void png_werr_fn(png_structp png, png_const_charp text) {
    png_writer *w = (png_writer *)png_get_error_ptr(png);
    cimg_fail(0, w->msg, w->msg_size, "PNG encoder: %s", text ? text : "error");
    png_longjmp(png, 1);
}

int cimg_png_encode(const void *pixels, uint32_t width, uint32_t height, int color, int bit_depth,
                    int interlace, const uint8_t *palette, int palette_count,
                    const void *trns, int trns_count, cimg_buffer *out, char *msg, size_t msg_size) {
    if (!out || !pixels || width == 0 || height == 0)
        return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "PNG encoder: empty image");
    out->data = NULL; out->size = 0;
    int spp;
    switch (color) {
    case 0: spp = 1; break;
    case 2: spp = 3; break;
    case 3: spp = 1; break;
    case 4: spp = 2; break;
    case 6: spp = 4; break;
    default: return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "PNG encoder: bad colour type %d", color);
    }
    int ok_depth = (bit_depth == 8) || (bit_depth == 16 && color != 3) ||
                   ((bit_depth == 1 || bit_depth == 2 || bit_depth == 4) && (color == 0 || color == 3));
    if (!ok_depth) return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "PNG encoder: bad bit depth %d for colour type %d", bit_depth, color);
    if (color == 3 && (!palette || palette_count < 1 || palette_count > 256))
        return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "PNG encoder: palette required");
    size_t rowbytes = ((size_t)width * spp * bit_depth + 7) / 8;

    png_writer w = {NULL, 0, 0, 0, msg, msg_size};
    png_bytep *volatile rows = NULL;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, png_werr_fn, png_warn_fn);
    if (!png) return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "libpng: out of memory");
    png_infop pi = png_create_info_struct(png);
    if (!pi) {
        png_destroy_write_struct(&png, NULL);
        return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "libpng: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(w.data);
        png_destroy_write_struct(&png, &pi);
        return w.oom ? CIMG_ERR_NOMEM : CIMG_ERR_ARGUMENT;
    }
    png_set_write_fn(png, &w, png_write_fn, png_flush_fn);
    png_set_IHDR(png, pi, width, height, bit_depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    if (color == 3) {
        png_color pal[256];
        for (int i = 0; i < palette_count; i++) {
            pal[i].red = palette[3 * i]; pal[i].green = palette[3 * i + 1]; pal[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, pi, pal, palette_count);
        if (trns && trns_count > 0) png_set_tRNS(png, pi, (png_bytep)trns, trns_count, NULL);
    } else if (trns && trns_count > 0 && (color == 0 || color == 2)) {
        const uint16_t *k = (const uint16_t *)trns;
        png_color_16 key;
        memset(&key, 0, sizeof key);
        if (color == 0) key.gray = k[0];
        else if (trns_count >= 3) { key.red = k[0]; key.green = k[1]; key.blue = k[2]; }
        png_set_tRNS(png, pi, NULL, 0, &key);
    }
    png_write_info(png, pi);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (bit_depth == 16) png_set_swap(png);
#endif
    rows = malloc(sizeof(png_bytep) * height);
    if (!rows) { w.oom = 1; png_error(png, "out of memory"); }
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)pixels + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, pi);
    free(rows);
    rows = NULL;
    png_destroy_write_struct(&png, &pi);
    out->data = w.data;
    out->size = w.size;
    return CIMG_OK;
}
