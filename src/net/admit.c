/* Connection admission; see admit.h. */
#include "net/admit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "util/hmap.h"

typedef struct client {
    unsigned open;
    char addr[ADMIT_ADDR_MAX]; /* the map's key */
} client_t;

struct admit {
    unsigned open, max_total, per_client;
    uint64_t refused, over, timed_out;
    hmap_t clients; /* addr -> client_t, present while it has a connection */
};

admit_t *admit_new(unsigned max_total, unsigned per_client)
{
    admit_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    hmap_init(&a->clients);
    admit_set_limits(a, max_total, per_client);
    return a;
}

void admit_free(admit_t *a)
{
    if (!a)
        return;
    hmap_free_values(&a->clients, free);
    free(a);
}

void admit_set_limits(admit_t *a, unsigned max_total, unsigned per_client)
{
    a->max_total = max_total;
    a->per_client = per_client;
}

void admit_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) /* one client, one count, however it arrives */
            inet_ntop(AF_INET, &a6->s6_addr[12], buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a6, buf, (socklen_t)len);
    }
}

admit_verdict_t admit_enter(admit_t *a, const struct sockaddr *sa, admit_slot_t *slot)
{
    CHECK_LOOP_THREAD();
    memset(slot, 0, sizeof *slot);
    admit_addr_text(sa, slot->addr, sizeof slot->addr);
    client_t *c = hmap_get(&a->clients, slot->addr);
    unsigned from = c ? c->open : 0;
    if (a->open >= a->max_total + ADMIT_SLACK ||
        (a->per_client && from >= a->per_client + ADMIT_SLACK))
        return a->refused++, slot->verdict = ADMIT_REFUSE;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return a->refused++, slot->verdict = ADMIT_REFUSE;
        memcpy(c->addr, slot->addr, sizeof c->addr);
        if (hmap_put(&a->clients, c->addr, c) != 0) {
            free(c);
            return a->refused++, slot->verdict = ADMIT_REFUSE;
        }
    }
    c->open++;
    a->open++;
    slot->counted = true;
    bool over = a->open > a->max_total || (a->per_client && c->open > a->per_client);
    a->over += over;
    return slot->verdict = over ? ADMIT_OVER : ADMIT_OK;
}

void admit_leave(admit_t *a, admit_slot_t *slot)
{
    CHECK_LOOP_THREAD();
    if (!slot->counted)
        return;
    slot->counted = false;
    client_t *c = hmap_get(&a->clients, slot->addr);
    CHECK(c && c->open > 0 && a->open > 0);
    if (!c)
        return;
    a->open--;
    if (--c->open == 0)
        free(hmap_del(&a->clients, slot->addr));
}

void admit_timed_out(admit_t *a) { a->timed_out++; }

void admit_figures(const admit_t *a, admit_figures_t *out)
{
    *out = (admit_figures_t){ a->open, a->refused, a->over, a->timed_out };
}

unsigned admit_open(const admit_t *a) { return a->open; }
unsigned admit_max(const admit_t *a) { return a->max_total; }

unsigned admit_open_from(const admit_t *a, const char *addr)
{
    const client_t *c = hmap_get(&a->clients, addr);
    return c ? c->open : 0;
}
