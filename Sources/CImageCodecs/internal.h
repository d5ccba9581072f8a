/* Private helpers shared by the CImageCodecs C files. Not part of the public API. */
#ifndef CIMAGECODECS_INTERNAL_H
#define CIMAGECODECS_INTERNAL_H

#include "CImageCodecs.h"
#include <stdarg.h>

/** Formats a message into msg (if non-NULL) and returns `status`. */
int cimg_fail(int status, char *msg, size_t msg_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Copies `src` (w x h, `bpp` bytes per pixel) into `dst` applying EXIF orientation 1..8. */
void cimg_orient(const uint8_t *src, uint32_t w, uint32_t h, size_t bpp, int orientation, uint8_t *dst);

int cimg_png_info(const uint8_t *data, size_t size, cimg_info *info, char *msg, size_t msg_size);
int cimg_png_decode(const uint8_t *data, size_t size, int want16, uint64_t max_pixels,
                    void *out, size_t out_size, cimg_info *info, char *msg, size_t msg_size);
int cimg_jpeg_info(const uint8_t *data, size_t size, cimg_info *info, char *msg, size_t msg_size);
int cimg_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                     void *out, size_t out_size, cimg_info *info, char *msg, size_t msg_size);

#endif
