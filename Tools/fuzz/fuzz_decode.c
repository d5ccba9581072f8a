/*
 * libFuzzer harness for the CImageCodecs decode entry points.
 * Build and run with Tools/fuzz/run.sh SECONDS (clang -fsanitize=fuzzer,address,undefined).
 * Exercises: format detection, header-only read, full decode at 8 and 16 bits with a pixel
 * limit, float conversion, resize of the decoded picture, and gunzip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "CImageCodecs.h"

#define MAX_PIXELS (4u * 1024u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char msg[256];
    cimg_info info;
    (void)cimg_detect_format(data, size);
    if (cimg_read_info(data, size, &info, msg, sizeof msg) == CIMG_OK) {
        uint64_t npix = (uint64_t)info.width * info.height;
        if (npix > 0 && npix <= MAX_PIXELS) {
            for (int want16 = 0; want16 <= 1; want16++) {
                int bps = cimg_bytes_per_sample(&info, want16);
                size_t n = (size_t)npix * info.channels * bps;
                void *buf = malloc(n);
                if (!buf) return 0;
                cimg_info di;
                if (cimg_decode(data, size, want16, MAX_PIXELS, buf, n, &di, msg, sizeof msg) == CIMG_OK) {
                    size_t opix = (size_t)di.out_width * di.out_height;
                    if (opix <= 65536) {
                        float *f = malloc(opix * 3 * sizeof(float));
                        float *r = malloc(7 * 5 * 3 * sizeof(float));
                        if (f && r) {
                            cimg_to_float(buf, bps * 8, opix, di.channels, 3, 1.0f, 1.0f, 0.0f, f);
                            cimg_resize(f, (int)di.out_width, (int)di.out_height, 3, r, 7, 5, CIMG_FILTER_LANCZOS3, CIMG_FILTER_BICUBIC);
                        }
                        free(f);
                        free(r);
                    }
                }
                free(buf);
            }
        }
        /* Deliberately undersized buffer: must be refused, never overrun. */
        uint8_t small[16];
        (void)cimg_decode(data, size, 1, MAX_PIXELS, small, sizeof small, &info, msg, sizeof msg);
    }
    if (cimg_detect_format(data, size) == CIMG_FORMAT_GZIP) {
        cimg_buffer out = {0};
        if (cimg_gunzip(data, size, 1 << 24, &out, msg, sizeof msg) == CIMG_OK) cimg_buffer_free(&out);
    }
    return 0;
}
