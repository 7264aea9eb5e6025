#include "net/listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "util/log.h"

static int parse_addr(const char *addr, const char *setting, struct sockaddr_storage *ss,
                      char *err, size_t len)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (!colon || hl == 0 || hl >= sizeof host || !colon[1]) {
        snprintf(err, len, "%s=\"%s\" is not valid: expected host:port", setting, addr);
        return -1;
    }
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE }, *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, len, "%s=\"%s\" is not valid: %s", setting, addr, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    /* Out of descriptors (EMFILE) and the like: log and keep listening;
     * libevent retries on the next readiness. */
    log_warn("cannot accept a connection", LOG_S("error", strerror(errno)));
}

int net_listen(net_listener_t *nl, struct event_base *base, const char *addr,
               const char *setting, evconnlistener_cb cb, void *ud, char *err, size_t len)
{
    struct sockaddr_storage ss;
    nl->l = NULL;
    nl->port = 0;
    if (parse_addr(addr, setting, &ss, err, len) != 0)
        return -1;
    socklen_t sl = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
    nl->l = evconnlistener_new_bind(base, cb, ud,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
                                        LEV_OPT_REUSEABLE,
                                    1024, (const struct sockaddr *)&ss, (int)sl);
    if (!nl->l) {
        snprintf(err, len, "cannot listen on %s (%s: address in use, or not allowed)", addr,
                 setting);
        return -1;
    }
    evconnlistener_set_error_cb(nl->l, on_accept_error);
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(evconnlistener_get_fd(nl->l), (struct sockaddr *)&bound, &bl) == 0)
        nl->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                     : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

void net_listen_free(net_listener_t *nl)
{
    if (nl->l)
        evconnlistener_free(nl->l);
    nl->l = NULL;
}

bool net_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "localhost:", 10) == 0 ||
           strncmp(addr, "[::1]:", 6) == 0;
}
