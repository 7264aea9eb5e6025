/* The handshake: +HI, then HELLO with the password hash when one is due. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faktory/auth.h"
#include "faktory/faktory_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/randid.h"

#include <openssl/crypto.h>

/* Passwords are wanted as soon as there is anything to check them with. */
static bool passwords(const config_t *cfg)
{
    return cfg->nkeys > 0 || cfg->faktory_password[0];
}

void fwp_greet(fwp_conn_t *c)
{
    sbuf_t out;
    sbuf_init(&out, 96);
    if (!passwords(c->srv->d.cfg)) {
        sbuf_adds(&out, "+HI {\"v\":2}\r\n");
    } else {
        if (randid_hex(c->salt, 8) != 0)
            abort(); /* no kernel randomness: salts would repeat */
        c->iterations = FWP_ITER_MIN + (int)(randid_unit() * FWP_ITER_SPAN);
        char line[96];
        snprintf(line, sizeof line, "+HI {\"v\":2,\"i\":%d,\"s\":\"%s\"}\r\n", c->iterations,
                 c->salt);
        sbuf_adds(&out, line);
    }
    fwp_send(c, &out);
    sbuf_free(&out);
}

/* A password check, done on the offload thread: the HELLO's hash against
 * JOBQ_FAKTORY_PASSWORD (admin), then each API key's secret (its role).
 * It holds copies, so that it touches nothing the loop owns. */
typedef struct cred {
    char secret[256];
    config_role_t role;
    char name[72]; /* the principal */
    char key[64];  /* the API key's name; "" for JOBQ_FAKTORY_PASSWORD */
} cred_t;

typedef struct auth_task {
    fwp_conn_t *c;
    char salt[17];
    int iterations;
    char given[FWP_HASH_HEX + 1];
    int ncred, match; /* match: index into cred, or -1 */
    cred_t cred[];
} auth_task_t;

static void verify(void *arg)
{
    auth_task_t *t = arg;
    char want[FWP_HASH_HEX + 1];
    t->match = -1;
    for (int i = 0; i < t->ncred && t->match < 0; i++) {
        fwp_pwdhash(t->cred[i].secret, t->salt, t->iterations, want);
        if (fwp_hash_equal(t->given, want))
            t->match = i;
    }
}

static void add_cred(auth_task_t *t, const char *secret, config_role_t role, const char *key)
{
    cred_t *c = &t->cred[t->ncred++];
    c->role = role;
    snprintf(c->secret, sizeof c->secret, "%s", secret);
    snprintf(c->key, sizeof c->key, "%s", key);
    if (key[0])
        snprintf(c->name, sizeof c->name, "key %s", key);
    else
        snprintf(c->name, sizeof c->name, "password");
}

static auth_task_t *new_task(fwp_conn_t *c, const char *given, int iterations)
{
    const config_t *cfg = c->srv->d.cfg;
    size_t n = (size_t)cfg->nkeys + 1;
    auth_task_t *t = calloc(1, sizeof *t + n * sizeof(cred_t));
    if (!t)
        return NULL;
    t->c = c;
    t->iterations = iterations;
    memcpy(t->salt, c->salt, sizeof t->salt);
    snprintf(t->given, sizeof t->given, "%s", given ? given : "");
    if (cfg->faktory_password[0])
        add_cred(t, cfg->faktory_password, ROLE_ADMIN, "");
    for (int i = 0; i < cfg->nkeys; i++)
        add_cred(t, cfg->keys[i].secret, cfg->keys[i].role, cfg->keys[i].name);
    return t;
}

static void free_task(auth_task_t *t)
{
    OPENSSL_cleanse(t->cred, (size_t)t->ncred * sizeof(cred_t));
    free(t);
}

/* Who holds this connection's leases: its process's wid, else a name made
 * from host and pid, so that a process's connections share its leases. */
static void name_worker(fwp_conn_t *c, const char *hostname, json_int_t pid)
{
    if (c->wid) {
        snprintf(c->worker, sizeof c->worker, "%s", c->wid);
        return;
    }
    snprintf(c->worker, sizeof c->worker, "fwp-%.150s-%lld", hostname ? hostname : "client",
             (long long)pid);
    for (char *p = c->worker; *p; p++)
        if (!job_name_char(*p))
            *p = '_';
}

static int check_hello(fwp_conn_t *c, json_t *h)
{
    json_t *wid = json_object_get(h, "wid"), *pid = json_object_get(h, "pid");
    json_t *host = json_object_get(h, "hostname"), *labels = json_object_get(h, "labels");
    if (!json_is_object(h))
        return fwp_send_err(c, "HELLO needs a JSON object"), -1;
    if (wid && !json_is_null(wid) && (!json_is_string(wid) || !job_name_valid(json_string_value(wid))))
        return fwp_send_err(c, "HELLO wid must be 1-%d characters of [A-Za-z0-9._:-]",
                            JOB_NAME_MAX), -1;
    if (pid && !json_is_null(pid) && !json_is_integer(pid))
        return fwp_send_err(c, "HELLO pid must be an integer"), -1;
    if (host && !json_is_null(host) && (!json_is_string(host) || json_string_length(host) > 255))
        return fwp_send_err(c, "HELLO hostname must be a string of at most 255 bytes"), -1;
    if (labels && !json_is_null(labels) && !json_is_array(labels))
        return fwp_send_err(c, "HELLO labels must be an array"), -1;
    return 0;
}

static void refuse(fwp_conn_t *c, const char *msg)
{
    fwp_send_err(c, "%s", msg);
    fwp_close_after_reply(c);
}

/* The handshake is over: register the process and say +OK. */
static void welcome(fwp_conn_t *c)
{
    json_t *h = c->hello;
    const char *wid = json_string_value(json_object_get(h, "wid"));
    const char *host = json_string_value(json_object_get(h, "hostname"));
    json_int_t pid = json_integer_value(json_object_get(h, "pid"));
    if (wid && (!(c->wid = strdup(wid)) ||
                workers_hello(c->srv->d.workers, wid, "faktory", host, pid,
                              json_object_get(h, "labels"), clock_now_ms()) != 0)) {
        refuse(c, "unavailable: out of memory");
        return;
    }
    name_worker(c, host, pid);
    json_decref(c->hello);
    c->hello = NULL;
    c->phase = FWP_READY;
    c->handshake_deadline = 0;
    fwp_send_text(c, "+OK\r\n");
}

static void on_verified(void *arg, bool cancelled)
{
    auth_task_t *t = arg;
    fwp_conn_t *c = t->c;
    int match = t->match;
    if (match >= 0) {
        c->role = t->cred[match].role;
        snprintf(c->principal, sizeof c->principal, "%s", t->cred[match].name);
        snprintf(c->key, sizeof c->key, "%s", t->cred[match].key);
    }
    free_task(t);
    c->authing = false;
    if (c->dead) {
        fwp_release(c);
        return;
    }
    fwp_finish(c);
    if (cancelled) {
        refuse(c, "unavailable: jobq is shutting down");
    } else if (match < 0) {
        log_warn("faktory client refused: invalid password", LOG_S("client", c->slot.addr));
        refuse(c, "Invalid password");
    } else {
        welcome(c);
    }
}

void fwp_hello(fwp_conn_t *c, const fwp_cmd_t *cmd)
{
    json_t *h = fwp_json_arg(c, cmd, "argument");
    if (!h || check_hello(c, h) != 0) {
        json_decref(h);
        fwp_close_after_reply(c);
        return;
    }
    c->hello = h;
    c->role = ROLE_ADMIN; /* without passwords, as HTTP without keys */
    if (!passwords(c->srv->d.cfg)) {
        welcome(c);
        return;
    }
    json_t *v = json_object_get(h, "v");
    /* Version 1 clients (and the Python library) hash once. */
    int n = json_is_integer(v) && json_integer_value(v) >= 2 ? c->iterations : 1;
    auth_task_t *t = new_task(c, json_string_value(json_object_get(h, "pwdhash")), n);
    if (!t || offload_submit(c->srv->auth, verify, on_verified, t) != 0) {
        if (t)
            free_task(t);
        refuse(c, "busy: too many handshakes are being checked; retry shortly");
        return;
    }
    c->authing = true;
    c->busy = true;
    c->srv->busy++;
}
