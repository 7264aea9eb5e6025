/* The handshake: +HI, then HELLO with the password hash when one is due. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faktory/auth.h"
#include "faktory/faktory_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/randid.h"

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

/* Finds the credential whose password hashes to pwdhash: JOBQ_FAKTORY_PASSWORD
 * (admin), then each API key's secret (its role). */
static bool authenticate(fwp_conn_t *c, const char *pwdhash, int iterations)
{
    const config_t *cfg = c->srv->d.cfg;
    char want[FWP_HASH_HEX + 1];
    if (!pwdhash)
        return false;
    if (cfg->faktory_password[0]) {
        fwp_pwdhash(cfg->faktory_password, c->salt, iterations, want);
        if (fwp_hash_equal(pwdhash, want)) {
            c->role = ROLE_ADMIN;
            snprintf(c->principal, sizeof c->principal, "password");
            return true;
        }
    }
    for (int i = 0; i < cfg->nkeys; i++) {
        fwp_pwdhash(cfg->keys[i].secret, c->salt, iterations, want);
        if (fwp_hash_equal(pwdhash, want)) {
            c->role = cfg->keys[i].role;
            snprintf(c->principal, sizeof c->principal, "key %s", cfg->keys[i].name);
            return true;
        }
    }
    return false;
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
        if (!job_name_valid((char[]){ *p, '\0' }))
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

void fwp_hello(fwp_conn_t *c, const fwp_cmd_t *cmd)
{
    json_t *h = fwp_json_arg(c, cmd, "argument");
    if (!h || check_hello(c, h) != 0) {
        json_decref(h);
        fwp_close_after_reply(c);
        return;
    }
    c->role = ROLE_ADMIN; /* without passwords, as HTTP without keys */
    if (passwords(c->srv->d.cfg)) {
        json_t *v = json_object_get(h, "v");
        /* Version 1 clients (and the Python library) hash once. */
        int n = json_is_integer(v) && json_integer_value(v) >= 2 ? c->iterations : 1;
        if (!authenticate(c, json_string_value(json_object_get(h, "pwdhash")), n)) {
            log_warn("faktory client refused: invalid password", LOG_S("client", c->slot.addr));
            json_decref(h);
            fwp_send_err(c, "Invalid password");
            fwp_close_after_reply(c);
            return;
        }
    }
    const char *wid = json_string_value(json_object_get(h, "wid"));
    const char *host = json_string_value(json_object_get(h, "hostname"));
    json_int_t pid = json_integer_value(json_object_get(h, "pid"));
    if (wid && (!(c->wid = strdup(wid)) ||
                workers_hello(c->srv->d.workers, wid, "faktory", host, pid,
                              json_object_get(h, "labels"), clock_now_ms()) != 0)) {
        json_decref(h);
        fwp_send_err(c, "unavailable: out of memory");
        fwp_close_after_reply(c);
        return;
    }
    name_worker(c, host, pid);
    json_decref(h);
    c->phase = FWP_READY;
    c->handshake_deadline = 0;
    fwp_send_text(c, "+OK\r\n");
}
