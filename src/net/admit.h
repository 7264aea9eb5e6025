/*
 * admit: how many connections are open, in total and per client address,
 * and whether one more may come in. Shared by every listener (HTTP and the
 * Faktory protocol) so that JOBQ_MAX_CONNECTIONS bounds them together.
 *
 * A connection is counted from admit_enter() to admit_leave(), whatever
 * the verdict, so a refused-but-answered connection still takes its slot
 * until it is closed. Past the limits a listener answers "too many" and
 * closes; past the limits plus ADMIT_SLACK it closes at once without a
 * word, so a flood costs a bounded amount of memory however fast it comes.
 *
 * Threads: loop thread only. Ownership: the caller owns each slot.
 */
#ifndef JOBQ_NET_ADMIT_H
#define JOBQ_NET_ADMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADMIT_SLACK 64
#define ADMIT_ADDR_MAX 48 /* an IPv6 address as text */

typedef enum { ADMIT_OK, ADMIT_OVER, ADMIT_REFUSE } admit_verdict_t;

typedef struct admit admit_t;

/* One counted connection; owned by its listener. */
typedef struct admit_slot {
    char addr[ADMIT_ADDR_MAX];
    admit_verdict_t verdict;
    bool counted;
} admit_slot_t;

/* per_client 0: no per-address limit. NULL if out of memory. */
admit_t *admit_new(unsigned max_total, unsigned per_client);
void admit_free(admit_t *a);
/* Takes effect for the next connection (SIGHUP). */
void admit_set_limits(admit_t *a, unsigned max_total, unsigned per_client);

/* Counts a new connection from sa into slot; ADMIT_REFUSE is not counted. */
admit_verdict_t admit_enter(admit_t *a, const struct sockaddr *sa, admit_slot_t *slot);
void admit_leave(admit_t *a, admit_slot_t *slot);

/* Connections closed for missing a deadline (the listener reports them). */
void admit_timed_out(admit_t *a);

typedef struct admit_figures {
    unsigned open;
    uint64_t refused;   /* closed at once: far past a limit */
    uint64_t over;      /* admitted past a limit, to be told "too many" and closed */
    uint64_t timed_out; /* closed for missing a header, body or reply deadline */
} admit_figures_t;
void admit_figures(const admit_t *a, admit_figures_t *out);

unsigned admit_open(const admit_t *a);
unsigned admit_max(const admit_t *a);
/* Open connections from one address (text as in admit_slot_t.addr). */
unsigned admit_open_from(const admit_t *a, const char *addr);

/* The address of sa as text ("127.0.0.1", "::1"); "" if not IP. */
void admit_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
