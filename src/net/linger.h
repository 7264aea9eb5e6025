/*
 * linger: close a connection without resetting it (nginx's "lingering
 * close"), for every listener (HTTP, the Faktory protocol).
 *
 * A socket closed while the client's bytes are still unread (a 431 for a
 * head past the pool, a 413 with its body still coming) makes the kernel
 * send RST instead of FIN, and the RST can overtake the reply or meet the
 * client still writing its body: it saw "connection reset" instead of the
 * 431 (one CI run in several, and 3% of tries on a loaded machine). So,
 * before libmicrohttpd closes such a socket, our FIN goes out after the
 * reply, and a duplicate of the socket reads and drops what still comes,
 * until the client's FIN, LINGER_MS or LINGER_BYTES, whichever is first.
 *
 * Bounds: at most LINGER_MAX sockets linger at once (past it a socket is
 * closed as before); each costs one descriptor and one event.
 * Threads: the loop thread of the event_base given.
 * Ownership: the set owns its duplicates; net_linger_free closes them.
 */
#ifndef JOBQ_NET_LINGER_H
#define JOBQ_NET_LINGER_H

#include <event2/event.h>

#define LINGER_MAX 256
#define LINGER_MS 2000
#define LINGER_BYTES (1024 * 1024)

typedef struct net_linger net_linger_t;

/* NULL if out of memory. */
net_linger_t *net_linger_new(struct event_base *base);
/* Called just before fd is closed by its owner: if bytes are waiting to
 * be read on it, shut its writing side and keep reading a duplicate. The
 * caller still closes fd. */
void net_linger_closing(net_linger_t *l, int fd);
/* Sockets lingering now (for tests and metrics). */
unsigned net_linger_count(const net_linger_t *l);
/* Closes every lingering socket. NULL is a no-op. */
void net_linger_free(net_linger_t *l);

#endif
