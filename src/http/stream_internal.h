/* stream_internal: the streamed reply's body, between request.c, server.c and stream.c. */
#ifndef JOBQ_HTTP_STREAM_INTERNAL_H
#define JOBQ_HTTP_STREAM_INTERNAL_H

#include <microhttpd.h>

typedef struct http_stream http_stream_t;

/* libmicrohttpd's response for the stream, which shares it; NULL if out of memory. */
struct MHD_Response *http_stream_response(http_stream_t *st);

#endif
