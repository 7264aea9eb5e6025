/* A stored job read back: its packed bytes (job_pack()), or the JSON
 * document that a store written before jobs were packed still holds. Both
 * forms are read everywhere, so an upgrade needs no conversion pass. */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/jsonb.h"
#include "util/sbuf.h"

err_t store_doc_job(const store_doc_t *d, job_t **out, problem_t *p)
{
    if (job_is_packed(d->doc, d->len))
        return job_unpack(d->doc, d->len, d->id, d->queue, d->type, out, p);
    json_error_t e;
    json_t *doc = d->len ? jsonb_loadb(d->doc, d->len, 0, JSONB_STORED_DEPTH, &e) : NULL;
    if (!doc)
        return problem_set(p, ERR_INTERNAL, "", "%s", d->len ? e.text : "empty document");
    err_t rc = json_is_object(doc) ? job_from_doc(doc, out, p)
                                   : problem_set(p, ERR_INTERNAL, "", "not a JSON object");
    json_decref(doc);
    return rc;
}

json_t *store_doc_json(const store_doc_t *d)
{
    job_t *job = NULL;
    problem_t p;
    if (store_doc_job(d, &job, &p) != ERR_OK)
        return json_pack("{s:s, s:s}", "id", d->id, "unreadable", p.detail);
    sbuf_t s;
    sbuf_init(&s, 1024);
    job_write_json(job, JOB_JSON_STORED, &s);
    job_free(job);
    json_error_t e; /* our own text: only memory can make this fail */
    json_t *doc = jsonb_loadb(s.p, s.len, 0, JSONB_STORED_DEPTH, &e);
    sbuf_free(&s);
    return doc;
}
