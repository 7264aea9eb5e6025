/*
 * assets: the table tools/ui_embed.py generates (build/gen/ui_assets.c)
 * from web/ and the chart library: each file with its gzip copy and ETag.
 * Files other than the page itself have the first 12 hex digits of their
 * SHA-256 in their name, so they can be cached for good.
 */
#ifndef JOBQ_UI_ASSETS_H
#define JOBQ_UI_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ui_asset {
    const char *path;  /* "/ui/" for the page, "/ui/assets/app.0123456789ab.js" */
    const char *ctype;
    const unsigned char *body, *gz; /* gz: NULL when gzip would not be smaller */
    size_t len, gz_len;
    const char *etag; /* quoted, as sent */
    bool immutable;
} ui_asset_t;

extern const ui_asset_t ui_assets[];
extern const size_t ui_nassets;

#endif
