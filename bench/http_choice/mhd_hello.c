/*
 * The libmicrohttpd side of the HTTP library comparison: answer every request
 * with a 50-byte JSON body, on one internal epoll thread or a pool of N.
 * Usage: mhd_hello PORT [THREADS]. Replies on the handler's second call, as
 * jobq does (replying on the first turns keep-alive off).
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "{\"id\":\"0123456789abcdef\",\"state\":\"queued\",\"ok\":1}";

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    (void)cls, (void)url, (void)method, (void)version, (void)data;
    static int first;
    if (!*state) {
        *state = &first;
        return MHD_YES;
    }
    if (*size) {
        *size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNALLY | MHD_USE_TURBO, (uint16_t)atoi(argv[1]), NULL, NULL, handle,
        NULL, MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0, MHD_OPTION_END);
    if (!d)
        return 1;
    pause();
    return 0;
}
