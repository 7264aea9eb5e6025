/*
 * listen: a listening socket in the loop, for every listener (HTTP, the
 * Faktory protocol). Parses "host:port" / "[v6]:port" (port 0 picks a free
 * one), binds, and hands each accepted socket to the owner's callback;
 * accept errors (out of descriptors) are logged and accepting goes on.
 *
 * Threads: the loop thread. Ownership: the caller frees the listener with
 * net_listen_free(); accepted sockets belong to the callback.
 */
#ifndef JOBQ_NET_LISTEN_H
#define JOBQ_NET_LISTEN_H

#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct net_listener {
    struct evconnlistener *l;
    unsigned port; /* the bound port */
} net_listener_t;

/* setting names the configuration key in errors ("JOBQ_LISTEN"). */
int net_listen(net_listener_t *nl, struct event_base *base, const char *addr,
               const char *setting, evconnlistener_cb cb, void *ud, char *err, size_t len);
void net_listen_free(net_listener_t *nl);

/* True for addresses only this machine reaches (127.x, localhost, [::1]). */
bool net_loopback(const char *addr);

#endif
