/* Lingering close; see linger.h. */
#include "net/linger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/check.h"
#include "util/clock.h"
#include "util/list.h"

typedef struct lingerer {
    list_node_t link; /* net_linger.socks */
    net_linger_t *owner;
    struct event *ev;
    int fd;            /* our duplicate */
    size_t left;       /* bytes we still read before giving up */
    int64_t until_ns;  /* and the time */
} lingerer_t;

struct net_linger {
    struct event_base *base;
    list_node_t socks;
    unsigned n;
};

net_linger_t *net_linger_new(struct event_base *base)
{
    net_linger_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base = base;
    list_init(&l->socks);
    return l;
}

static void finish(lingerer_t *g)
{
    list_remove(&g->link);
    g->owner->n--;
    event_free(g->ev);
    close(g->fd);
    free(g);
}

/* Drops what is readable now; true once the socket is done with. */
static bool drain(lingerer_t *g)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(g->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0 && (size_t)n < g->left) {
            g->left -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    lingerer_t *g = arg;
    if ((what & EV_TIMEOUT) || clock_mono_ns() >= g->until_ns || drain(g))
        finish(g);
}

void net_linger_closing(net_linger_t *l, int fd)
{
    int unread = 0;
    if (!l || ioctl(fd, FIONREAD, &unread) != 0 || unread <= 0 || l->n >= LINGER_MAX)
        return;
    lingerer_t *g = calloc(1, sizeof *g);
    if (!g)
        return;
    g->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    g->ev = g->fd >= 0 ? event_new(l->base, g->fd, EV_READ | EV_PERSIST, on_readable, g) : NULL;
    struct timeval tv = { LINGER_MS / 1000, (LINGER_MS % 1000) * 1000 };
    if (!g->ev || event_add(g->ev, &tv) != 0) {
        if (g->ev)
            event_free(g->ev);
        if (g->fd >= 0)
            close(g->fd);
        free(g);
        return;
    }
    /* The reply is written; the FIN after it tells the client so, while our
     * duplicate keeps the socket open for reading. */
    shutdown(fd, SHUT_WR);
    g->owner = l;
    g->left = LINGER_BYTES;
    g->until_ns = clock_mono_ns() + (int64_t)LINGER_MS * 1000000;
    list_push_back(&l->socks, &g->link);
    l->n++;
}

unsigned net_linger_count(const net_linger_t *l) { return l ? l->n : 0; }

void net_linger_free(net_linger_t *l)
{
    if (!l)
        return;
    while (!list_empty(&l->socks))
        finish(LIST_ENTRY(l->socks.next, lingerer_t, link));
    CHECK(l->n == 0);
    free(l);
}
