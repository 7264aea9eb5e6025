/*
 * The libevent evhttp side of the HTTP library comparison: the same 50-byte
 * JSON reply, from one event loop, or N loops sharing the listening socket.
 * Usage: evhttp_hello PORT [THREADS].
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char body[] = "{\"id\":\"0123456789abcdef\",\"state\":\"queued\",\"ok\":1}";
static evutil_socket_t listener;

static void handle(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void *loop(void *arg)
{
    (void)arg;
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    evhttp_set_gencb(http, handle, NULL);
    evhttp_accept_socket(http, listener);
    event_base_dispatch(base);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    listener = socket(AF_INET, SOCK_STREAM, 0);
    evutil_make_listen_socket_reuseable(listener);
    evutil_make_socket_nonblocking(listener);
    if (bind(listener, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(listener, 1024) != 0)
        return 1;
    pthread_t th[16];
    for (int i = 1; i < threads && i < 16; i++)
        pthread_create(&th[i], NULL, loop, NULL);
    loop(NULL);
    return 0;
}
