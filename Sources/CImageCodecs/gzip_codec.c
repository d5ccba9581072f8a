/* gzip / zlib decompression for IDX datasets. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int cimg_gunzip(const uint8_t *data, size_t size, size_t max_size, cimg_buffer *out,
                char *msg, size_t msg_size) {
    if (!out || (!data && size)) return cimg_fail(CIMG_ERR_ARGUMENT, msg, msg_size, "bad arguments");
    out->data = NULL; out->size = 0;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) /* 15 + 32: zlib or gzip header, auto-detected */
        return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "zlib: cannot initialise");
    size_t cap = size * 4 + 1024, len = 0;
    if (cap > max_size && max_size > 0) cap = max_size + 1;
    uint8_t *buf = malloc(cap);
    if (!buf) { inflateEnd(&zs); return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "out of memory"); }
    const uint8_t *in = data;
    size_t in_left = size;
    int rc = Z_OK;
    for (;;) {
        if (len == cap) {
            if (max_size > 0 && len > max_size) break;
            size_t ncap = cap * 2;
            if (max_size > 0 && ncap > max_size + 1) ncap = max_size + 1;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) { free(buf); inflateEnd(&zs); return cimg_fail(CIMG_ERR_NOMEM, msg, msg_size, "out of memory"); }
            buf = nb;
            cap = ncap;
        }
        uInt chunk_in = in_left > 0x40000000 ? 0x40000000 : (uInt)in_left;
        size_t out_room = cap - len;
        uInt chunk_out = out_room > 0x40000000 ? 0x40000000 : (uInt)out_room;
        zs.next_in = (Bytef *)in;
        zs.avail_in = chunk_in;
        zs.next_out = buf + len;
        zs.avail_out = chunk_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        size_t used_in = chunk_in - zs.avail_in, produced = chunk_out - zs.avail_out;
        in += used_in; in_left -= used_in; len += produced;
        if (max_size > 0 && len > max_size) break;
        if (rc == Z_STREAM_END) {
            /* Concatenated gzip members: continue with the next one. */
            if (in_left >= 2 && in[0] == 0x1F && in[1] == 0x8B) { inflateReset(&zs); continue; }
            break;
        }
        if (rc == Z_BUF_ERROR && in_left == 0 && zs.avail_out > 0) break; /* input ended early */
        if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    }
    inflateEnd(&zs);
    if (max_size > 0 && len > max_size) {
        free(buf);
        return cimg_fail(CIMG_ERR_TOO_LARGE, msg, msg_size, "decompressed data exceeds %zu bytes", max_size);
    }
    if (rc != Z_STREAM_END) {
        free(buf);
        if (rc == Z_OK || rc == Z_BUF_ERROR)
            return cimg_fail(CIMG_ERR_CORRUPT, msg, msg_size, "truncated gzip data (stream ends early)");
        return cimg_fail(CIMG_ERR_CORRUPT, msg, msg_size, "corrupt gzip data (%s)", zs.msg ? zs.msg : "inflate error");
    }
    out->data = buf;
    out->size = len;
    return CIMG_OK;
}
