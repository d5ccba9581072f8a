/* JPEG decode/encode through libjpeg(-turbo). All setjmp/longjmp handling stays in this file. */
#include "internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char text[JMSG_LENGTH_MAX];
    int is_warning;
} jerr_mgr;

static void j_error_exit(j_common_ptr cinfo) {
    jerr_mgr *e = (jerr_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->text);
    e->is_warning = 0;
    longjmp(e->jmp, 1);
}

/* Warnings (msg_level < 0) about corrupt data or premature end are errors; metadata-only
 * warnings (unknown JFIF revision, unknown Adobe transform, bad ICC chunk) are ignored.
 * Trace messages (msg_level >= 0) are ignored. */
static void j_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM
#ifdef JWRN_BOGUS_ICC
        || code == JWRN_BOGUS_ICC
#endif
    ) return;
    jerr_mgr *e = (jerr_mgr *)cinfo->err;
    cinfo->err->num_warnings++;
    (*cinfo->err->format_message)(cinfo, e->text);
    e->is_warning = 1;
    longjmp(e->jmp, 1);
}

static void j_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void setup_err(jerr_mgr *e) {
    jpeg_std_error(&e->pub);
    e->pub.error_exit = j_error_exit;
    e->pub.emit_message = j_emit_message;
    e->pub.output_message = j_output_message;
    e->text[0] = 0;
    e->is_warning = 0;
}

/* ---- EXIF orientation ------------------------------------------------------------------------- */

static unsigned rd16(const uint8_t *p, int le) { return le ? (unsigned)(p[0] | p[1] << 8) : (unsigned)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p, int le) {
    return le ? ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24)
              : ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3]);
}

/* Returns the orientation tag (1..8) of an APP1 Exif payload, or 0 when absent/invalid. */
static int exif_orientation(const uint8_t *d, size_t n) {
    if (n < 14 || memcmp(d, "Exif\0\0", 6) != 0) return 0;
    const uint8_t *t = d + 6;
    size_t tn = n - 6;
    int le;
    if (t[0] == 'I' && t[1] == 'I') le = 1;
    else if (t[0] == 'M' && t[1] == 'M') le = 0;
    else return 0;
    if (rd16(t + 2, le) != 42) return 0;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd < 8 || ifd > tn || tn - ifd < 2) return 0;
    unsigned count = rd16(t + ifd, le);
    size_t p = ifd + 2;
    for (unsigned i = 0; i < count; i++, p += 12) {
        if (p > tn || tn - p < 12) return 0;
        if (rd16(t + p, le) == 0x0112) {
            unsigned type = rd16(t + p + 2, le);
            unsigned v;
            if (type == 3) v = rd16(t + p + 8, le);            /* SHORT */
            else if (type == 4) v = rd32(t + p + 8, le);       /* LONG (non-standard) */
            else return 0;
            return (v >= 1 && v <= 8) ? (int)v : 0;
        }
    }
    return 0;
}

static int find_orientation(j_decompress_ptr cinfo) {
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1) {
            int o = exif_orientation(m->data, m->data_length);
            if (o) return o;
        }
    }
    return 1;
}

static int fill_info(j_decompress_ptr cinfo, cimg_info *info, char *msg, size_t msg_size) {
    info->format = CIMG_FORMAT_JPEG;
    info->width = cinfo->image_width;
    info->height = cinfo->image_height;
    info->bit_depth = cinfo->data_precision;
    info->stored_channels = cinfo->num_components;
    info->progressive = cinfo->progressive_mode ? 1 : 0;
    info->orientation = find_orientation(cinfo);
    info->out_width = info->orientation >= 5 ? info->height : info->width;
    info->out_height = info->orientation >= 5 ? info->width : info->height;
    info->has_alpha = 0;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE: info->color = CIMG_COLOR_GRAY; info->channels = 1; break;
    case JCS_YCbCr: info->color = CIMG_COLOR_YCBCR; info->channels = 3; break;
    case JCS_RGB: info->color = CIMG_COLOR_RGB; info->channels = 3; break;
    case JCS_CMYK: info->color = CIMG_COLOR_CMYK; info->channels = 3; break;
    case JCS_YCCK: info->color = CIMG_COLOR_YCCK; info->channels = 3; break;
    default:
        return cimg_fail(CIMG_ERR_UNSUPPORTED, msg, msg_size,
                         "unsupported JPEG colour space (%d components)", cinfo->num_components);
    }
    info->adobe_inverted = (info->color == CIMG_COLOR_CMYK || info->color == CIMG_COLOR_YCCK) && cinfo->saw_Adobe_marker;
    if (cinfo->data_precision != 8)
        return cimg_fail(CIMG_ERR_UNSUPPORTED, msg, msg_size, "unsupported JPEG precision %d bits", cinfo->data_precision);
    return CIMG_OK;
}

static int jpeg_fail(jerr_mgr *e, char *msg, size_t msg_size) {
    return cimg_fail(CIMG_ERR_CORRUPT, msg, msg_size, "truncated/corrupt JPEG (%s)", e->text[0] ? e->text : "libjpeg error");
}

int cimg_jpeg_info(const uint8_t *data, size_t size, cimg_info *info, char *msg, size_t msg_size) {
    struct jpeg_decompress_struct cinfo;
    jerr_mgr e;
    memset(&cinfo, 0, sizeof cinfo);
    setup_err(&e);
    cinfo.err = &e.pub;
    if (setjmp(e.jmp)) {
        jpeg_destroy_decompress(&cinfo);
        return jpeg_fail(&e, msg, msg_size);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    int rc = fill_info(&cinfo, info, msg, msg_size);
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

int cimg_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                     void *out, size_t out_size, cimg_info *info, char *msg, size_t msg_size) {
    struct jpeg_decompress_struct cinfo;
    jerr_mgr e;
    uint8_t *volatile tmp = NULL;  /* whole image before orientation, when needed */
    uint8_t *volatile row4 = NULL; /* one CMYK row */
    memset(&cinfo, 0, sizeof cinfo);
    setup_err(&e);
    cinfo.err = &e.pub;
    if (setjmp(e.jmp)) {
        free(tmp);
        free(row4);
        jpeg_destroy_decompress(&cinfo);
        return jpeg_fail(&e, msg, msg_size);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    int rc = fill_info(&cinfo, info, msg, msg_size);
    if (rc) { jpeg_destroy_decompress(&cinfo); return rc; }

    uint64_t npix = (uint64_t)info->width * info->height;
    if (max_pixels > 0 && npix > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return cimg_fail(CIMG_ERR_TOO_LARGE, msg, msg_size,
                         "image declares %ux%u pixels (%llu), more than the limit of %llu pixels",
                         info->width, info->height, (unsigned long long)npix, (unsigned long long)max_pixels);
    }
    const int ch = info->channels;
    const size_t rowbytes = (size_t)info->width * ch;
    if (info->height == 0 || out_size / info->height < rowbytes) {
        jpeg_destroy_decompress(&cinfo);
        return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "output buffer too small (%zu bytes)", out_size);
    }
    const int cmyk = info->color == CIMG_COLOR_CMYK || info->color == CIMG_COLOR_YCCK;
    cinfo.out_color_space = ch == 1 ? JCS_GRAYSCALE : (cmyk ? JCS_CMYK : JCS_RGB);
    cinfo.dct_method = JDCT_ISLOW;

    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width != info->width || cinfo.output_height != info->height ||
        cinfo.output_components != (cmyk ? 4 : ch)) {
        jpeg_destroy_decompress(&cinfo);
        return cimg_fail(CIMG_ERR_CORRUPT, msg, msg_size, "truncated/corrupt JPEG (unexpected output layout)");
    }
    uint8_t *dst = (uint8_t *)out;
    if (info->orientation != 1) {
        tmp = malloc(rowbytes * info->height);
        if (!tmp) {
            jpeg_destroy_decompress(&cinfo);
            return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "out of memory");
        }
        dst = tmp;
    }
    if (cmyk) {
        row4 = malloc((size_t)info->width * 4);
        if (!row4) {
            free(tmp);
            jpeg_destroy_decompress(&cinfo);
            return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "out of memory");
        }
    }
    const int inv = info->adobe_inverted;
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *drow = dst + (size_t)cinfo.output_scanline * rowbytes;
        if (!cmyk) {
            JSAMPROW rp[1] = {drow};
            jpeg_read_scanlines(&cinfo, rp, 1);
        } else {
            JSAMPROW rp[1] = {row4};
            jpeg_read_scanlines(&cinfo, rp, 1);
            /* Adobe (Photoshop) CMYK/YCCK stores inverted samples: R = C*K/255 on the stored
             * values; plain CMYK: R = (255-C)*(255-K)/255. */
            for (uint32_t x = 0; x < info->width; x++) {
                unsigned c = row4[4 * x], m = row4[4 * x + 1], yy = row4[4 * x + 2], k = row4[4 * x + 3];
                if (!inv) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
                drow[3 * x] = (uint8_t)((c * k + 127) / 255);
                drow[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                drow[3 * x + 2] = (uint8_t)((yy * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (tmp) {
        cimg_orient(tmp, info->width, info->height, (size_t)ch, info->orientation, (uint8_t *)out);
        free(tmp);
    }
    free(row4);
    return CIMG_OK;
}

/* ---- encoder ------------------------------------------------------------------------------------ */

int cimg_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int components,
                     int quality, int progressive, int ycck, cimg_buffer *out,
                     char *msg, size_t msg_size) {
    if (!out || !pixels || width == 0 || height == 0 || width > 65500 || height > 65500)
        return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "JPEG encoder: bad dimensions %ux%u", width, height);
    if (components != 1 && components != 3 && components != 4)
        return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "JPEG encoder: bad component count %d", components);
    out->data = NULL; out->size = 0;
    struct jpeg_compress_struct cinfo;
    jerr_mgr e;
    unsigned char *volatile b = NULL;     /* volatile: libjpeg may realloc before a longjmp */
    unsigned long volatile bufsize = 0;
    memset(&cinfo, 0, sizeof cinfo);
    setup_err(&e);
    cinfo.err = &e.pub;
    if (setjmp(e.jmp)) {
        jpeg_destroy_compress(&cinfo);
        free(b);
        return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "JPEG encoder: %s", e.text);
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, (unsigned char **)&b, (unsigned long *)&bufsize);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : (components == 3 ? JCS_RGB : JCS_CMYK);
    jpeg_set_defaults(&cinfo);
    if (components == 4 && ycck) jpeg_set_colorspace(&cinfo, JCS_YCCK);
    if (quality < 1) quality = 1;
    if (quality > 100) quality = 100;
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    const size_t rowbytes = (size_t)width * components;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rp[1] = {(JSAMPROW)(pixels + (size_t)cinfo.next_scanline * rowbytes)};
        jpeg_write_scanlines(&cinfo, rp, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    out->data = b;
    out->size = bufsize;
    return CIMG_OK;
}
