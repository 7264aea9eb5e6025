/*
 * store_internal: the store's private state, shared by store.c (the loop
 * thread's side, opening and recovery) and writer.c (the store thread).
 * Nothing outside src/store/ includes this file.
 */
#ifndef JOBQ_STORE_INTERNAL_H
#define JOBQ_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/backend.h"
#include "store/store.h"

/* Same order as store_statement_t, which times them. */
typedef enum { OP_PUT, OP_DELETE, OP_QUEUE, OP_GET, OP_LIST, OP_STATS, OP_PURGE } op_kind_t;

typedef struct op {
    struct op *next;
    op_kind_t kind;
    int64_t queued_ns; /* when the loop queued it, for the round-trip figure */
    uint64_t seq; /* writes: their number; reads: the last write before them */
    job_event_t ev;
    store_row_t row;   /* OP_PUT; strings point into str[] and doc */
    store_query_t q;   /* OP_LIST; strings point into str[] */
    store_purge_t purge; /* OP_PURGE; after_id points into str[] */
    const char *name;  /* OP_DELETE id, OP_QUEUE name, OP_GET the first id */
    size_t nids;       /* OP_GET: ids, NUL-separated from name on */
    bool many;         /* OP_GET: answer an array (store_get_jobs) */
    bool paused;
    bool superseded;   /* OP_PUT: a later put or delete of the job is in the same batch */
    char *doc;         /* owned */
    store_read_cb cb;
    void *ud;
    json_t *result;
    char *error;
    char str[];
} op_t;

#define STORE_READERS 2    /* read-only connections, one thread each */
#define STORE_READS_MAX 256 /* reads queued or running at most; then "busy" */

typedef struct store_reader {
    struct store *store;
    void *conn;
    pthread_t thread;
    bool running;
} store_reader_t;

struct store {
    const backend_ops_t *ops;
    void *conn;
    durability_t durability;
    int efd;
    pthread_t thread;
    bool running;

    pthread_mutex_t mu; /* guards everything down to `committed` */
    pthread_cond_t cv;
    op_t *head, *tail;  /* queued for the thread */
    op_t *done;         /* processed, for store_dispatch */
    op_t *done_tail;
    bool stopping;
    uint64_t committed;
    char last_error[512];
    op_t *rhead, *rtail;    /* reads waiting for a reader */
    int reads_queued;       /* queued or running */
    pthread_cond_t read_cv; /* a read arrived, or writes were committed */
    store_reader_t readers[STORE_READERS];
    char *url;

    /* Group-commit figures: written by the store thread under mu, except
     * the round trip, which the loop thread owns. */
    store_figures_t fig;
    histogram_t roundtrip;
    histogram_t st_private[STORE_ST_COUNT]; /* store thread; copied into fig per batch */
    store_faults_t faults;
    int64_t slow_commit_ms;
    double last_commit_s; /* store thread: the COMMIT statement alone, last batch */
    int64_t fail_started_ns; /* store thread: first commit under commit_fail_ms */
    bool injected;           /* store thread: the last failure was a fault seam's */
    bool lost;               /* store thread: the file check before this commit failed */
    char lost_why[400];

    _Atomic bool healthy;
    _Atomic bool dead;        /* the database file was lost: nothing commits any more */
    _Atomic bool disk_full;
    uint64_t next_seq;        /* loop thread */
    op_t *local, *local_tail; /* loop thread: not yet handed to the store thread */
    void (*kick)(void *ud);
    void *kick_ud;
    uint64_t committed_seen;  /* loop thread's copy */
    list_node_t waiters;      /* store_waiter_t, by seq */
    struct quarantined {
        char id[JOB_NAME_MAX + 1];
        char why[200];
        int64_t at_ms;
    } *quarantine;            /* loop thread; up to STORE_QUARANTINE_MAX */
    size_t nquarantine, quarantine_seen;
};

void store_free_op(op_t *op);
/* Appends first..last to the done list (caller holds mu); store_notify()
 * then wakes the loop (after unlocking) to run store_dispatch. */
void store_done_append(store_t *s, op_t *first, op_t *last);
void store_notify(store_t *s);
/* The store thread's body: takes, applies and hands back batches until
 * stopping and drained. */
void *store_writer_main(void *arg);
/* reader.c: the read pool, started after the writer, stopped after it. */
int store_readers_start(store_t *s, char *err, size_t errlen);
void store_readers_stop(store_t *s);

#endif
