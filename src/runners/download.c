/* The download runner: job type "http.download" on queue "download".
 *
 * args: {"url": http(s), "path": relative to JOBQ_DOWNLOAD_DIR, "sha256"?:
 * 64 hex, "max_bytes"?: integer, "headers"?: {name: string}, "overwrite"?:
 * bool}. The file is written to "<dir>/.<name>.<job hash>.part", verified,
 * and renamed into place only when complete; a later attempt of the same
 * job resumes its .part with a Range request, or starts over when the
 * server ignores the Range. Paths are opened one component at a time with O_NOFOLLOW,
 * so neither "..", absolute paths nor symlinks can leave the folder. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runners/policy.h"
#include "runners/runners_internal.h"
#include "util/clock.h"

typedef struct dl {
    int dirfd, fd;
    char leaf[256], part[262], rel[1024];
    bool overwrite, refused_private, too_big, restarted, range_mismatch;
    int64_t max_bytes, resumed_from, written;
    char range[32];
    char want_sha[65];
    EVP_MD_CTX *sha;
    int64_t started_ns;
} dl_t;

static bool refuse(task_t *t, err_t type, const char *field, const char *detail)
{
    t->refused = true;
    problem_set(&t->problem, type, field, "%s", detail);
    return false;
}

/* Opens every folder of rel under root, creating them, never following a
 * symlink; leaves the last component in d->leaf. */
static bool open_parent(task_t *t, dl_t *d, const char *root, const char *rel)
{
    mkdir(root, 0755);
    int dfd = open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dfd < 0)
        return refuse(t, ERR_UNAVAILABLE, "", "the download folder cannot be opened");
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", rel);
    char *slash = strrchr(copy, '/');
    snprintf(d->leaf, sizeof d->leaf, "%.255s", slash ? slash + 1 : copy);
    if (slash) {
        *slash = '\0';
        for (char *save = NULL, *seg = strtok_r(copy, "/", &save); seg;
             seg = strtok_r(NULL, "/", &save)) {
            mkdirat(dfd, seg, 0755);
            int next = openat(dfd, seg, O_DIRECTORY | O_NOFOLLOW | O_RDONLY | O_CLOEXEC);
            close(dfd);
            if (next < 0)
                return refuse(t, ERR_VALIDATION, "args.path",
                              "args.path leads through a symlink or a file");
            dfd = next;
        }
    }
    d->dirfd = dfd;
    /* The .part belongs to this job: another job to the same path never
     * resumes (or appends to) what an unrelated transfer left. */
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the job id */
    for (const char *c = t->job_id; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    snprintf(d->part, sizeof d->part, ".%.200s.%016llx.part", d->leaf, (unsigned long long)h);
    return true;
}

/* Hashes what an earlier attempt left, so the checksum covers the file. */
static bool resume_part(dl_t *d)
{
    struct stat st;
    if (fstat(d->fd, &st) != 0)
        return false;
    char buf[65536];
    for (off_t off = 0; off < st.st_size;) {
        ssize_t n = pread(d->fd, buf, sizeof buf, off);
        if (n <= 0)
            return false;
        EVP_DigestUpdate(d->sha, buf, (size_t)n);
        off += n;
    }
    d->resumed_from = st.st_size;
    return lseek(d->fd, 0, SEEK_END) >= 0;
}

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    task_t *t = ud;
    dl_t *d = t->kind_data;
    if (purpose == CURLSOCKTYPE_IPCXN && !runner_env(t)->allow_private &&
        !runner_address_public(&a->addr)) {
        d->refused_private = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    task_t *t = ud;
    dl_t *d = t->kind_data;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) { /* an error page: keep its start for the context */
        size_t room = t->excerpt.len < TASK_EXCERPT_MAX ? TASK_EXCERPT_MAX - t->excerpt.len : 0;
        sbuf_add(&t->excerpt, data, len < room ? len : room);
        return len;
    }
    if (status == 206 && d->range_mismatch)
        return 0; /* not the bytes we asked for: start over next attempt */
    if (status == 200 && d->resumed_from > 0 && !d->restarted) {
        /* The server ignored our Range: start the file over. */
        d->restarted = true;
        d->resumed_from = 0;
        if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0)
            return 0;
        EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL);
    }
    if (d->max_bytes && d->resumed_from + d->written + (int64_t)len > d->max_bytes) {
        d->too_big = true;
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(d->fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0; /* disk full or gone: curl reports a write error */
        off += (size_t)w;
    }
    EVP_DigestUpdate(d->sha, data, len);
    d->written += (int64_t)len;
    return len;
}

/* A 206 must start where the .part ends. */
static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    task_t *t = ud;
    dl_t *d = t->kind_data;
    size_t len = size * n;
    if (len > 14 && strncasecmp(data, "Content-Range:", 14) == 0) {
        long long start = -1;
        if (sscanf(data + 14, " bytes %lld-", &start) != 1 || start != d->resumed_from)
            d->range_mismatch = true;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ult, curl_off_t uln)
{
    (void)ult;
    (void)uln;
    task_t *t = ud;
    dl_t *d = t->kind_data;
    int64_t now = clock_mono_ns();
    if (now - t->last_progress_ns < 1000000000LL || dlnow == 0)
        return 0;
    double secs = (double)(now - d->started_ns) / 1e9;
    int64_t total = dltotal ? d->resumed_from + dltotal : 0;
    int64_t have = d->resumed_from + dlnow;
    json_t *p = json_pack("{s:I, s:o, s:o, s:f}", "bytes", (json_int_t)have, "total",
                          total ? json_integer(total) : json_null(), "percent",
                          total ? json_real(100.0 * (double)have / (double)total) : json_null(),
                          "bytes_per_s", secs > 0 ? (double)dlnow / secs : 0.0);
    runner_progress(t, p);
    json_decref(p);
    return 0;
}

static bool check_args(task_t *t, dl_t *d, json_t *args, const char **url)
{
    static const char *const known[] = { "url", "path", "sha256", "max_bytes", "headers",
                                         "overwrite", NULL };
    if (!runner_http_args(t, args, known, url))
        return false;
    const char *rel = json_string_value(json_object_get(args, "path"));
    if (!rel || !runner_path_valid(rel))
        return refuse(t, ERR_VALIDATION, "args.path",
                      "args.path must be a relative path without . or .. segments");
    snprintf(d->rel, sizeof d->rel, "%s", rel);
    const char *sha = json_string_value(json_object_get(args, "sha256"));
    if (json_object_get(args, "sha256") &&
        (!sha || strlen(sha) != 64 || strspn(sha, "0123456789abcdefABCDEF") != 64))
        return refuse(t, ERR_VALIDATION, "args.sha256", "args.sha256 must be 64 hex digits");
    for (size_t i = 0; sha && i < 64; i++)
        d->want_sha[i] = (char)(sha[i] | 0x20); /* lower case */
    json_t *mb = json_object_get(args, "max_bytes");
    if (mb && (!json_is_integer(mb) || json_integer_value(mb) < 1))
        return refuse(t, ERR_VALIDATION, "args.max_bytes", "args.max_bytes must be a positive integer");
    d->max_bytes = mb ? json_integer_value(mb) : 0;
    json_t *ow = json_object_get(args, "overwrite");
    if (ow && !json_is_boolean(ow))
        return refuse(t, ERR_VALIDATION, "args.overwrite", "args.overwrite must be true or false");
    d->overwrite = json_is_true(ow);
    return true;
}

/* The .part of an earlier attempt is resumed only if it is a plain file
 * with one link: a hard link planted to a file outside the folder (or
 * anything else) is removed and a fresh file made in its place. */
static int open_part(dl_t *d)
{
    int fd = openat(d->dirfd, d->part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1)
        return fd;
    if (fd >= 0)
        close(fd);
    if (fd >= 0 || errno == ELOOP)
        unlinkat(d->dirfd, d->part, 0);
    return openat(d->dirfd, d->part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
}

static bool open_files(task_t *t, dl_t *d)
{
    if (!open_parent(t, d, runner_env(t)->download_dir, d->rel))
        return false;
    struct stat st;
    if (!d->overwrite && fstatat(d->dirfd, d->leaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return refuse(t, ERR_CONFLICT, "args.path", "the file exists (set args.overwrite to replace it)");
    if ((d->fd = open_part(d)) < 0)
        return refuse(t, ERR_VALIDATION, "args.path", "the file cannot be created there");
    if (!(d->sha = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL) ||
        !resume_part(d))
        return refuse(t, ERR_INTERNAL, "", "cannot prepare the download");
    return true;
}

static bool prepare(task_t *t, const job_t *job)
{
    dl_t *d = calloc(1, sizeof *d);
    if (!d)
        return refuse(t, ERR_INTERNAL, "", "out of memory");
    d->dirfd = d->fd = -1;
    d->started_ns = clock_mono_ns();
    t->kind_data = d;
    const char *url;
    if (strcmp(job->type, "http.download") != 0)
        return refuse(t, ERR_VALIDATION, "type", "the download queue runs only jobs of type http.download");
    if (!check_args(t, d, job_args(job), &url) || !open_files(t, d))
        return false;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L); /* stalled for 30 s: give up */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "jobq-download");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    /* A Range of our own, not CURLOPT_RESUME_FROM: with that, curl fails a
     * 200 answer ("range was not delivered") before we could start over. */
    snprintf(d->range, sizeof d->range, "%lld-", (long long)d->resumed_from);
    if (d->resumed_from > 0) {
        curl_easy_setopt(e, CURLOPT_RANGE, d->range);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    }
    return true;
}

static void hex(const unsigned char *md, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The transfer succeeded: verify, then move the file into place. */
static err_t finish_file(task_t *t, dl_t *d, json_t **result, char *msg, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char got[2 * EVP_MAX_MD_SIZE + 1];
    EVP_DigestFinal_ex(d->sha, md, &mdlen);
    hex(md, mdlen, got);
    if (d->want_sha[0] && strcmp(got, d->want_sha) != 0) {
        unlinkat(d->dirfd, d->part, 0);
        snprintf(msg, len, "checksum mismatch: expected %s, got %s", d->want_sha, got);
        return ERR_VALIDATION;
    }
    if (fsync(d->fd) != 0 || renameat(d->dirfd, d->part, d->dirfd, d->leaf) != 0) {
        snprintf(msg, len, "cannot move the file into place: %s", strerror(errno));
        return ERR_UNAVAILABLE;
    }
    fsync(d->dirfd);
    *result = json_pack("{s:s, s:I, s:s, s:I}", "path", d->rel, "bytes",
                        (json_int_t)(d->resumed_from + d->written), "sha256", got, "resumed_from",
                        (json_int_t)d->resumed_from);
    (void)t;
    return ERR_OK;
}

static err_t outcome(task_t *t, CURLcode rc, json_t **result, char *msg, size_t len,
                     json_t **context)
{
    dl_t *d = t->kind_data;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (d->refused_private) {
        snprintf(msg, len, "refusing a private or loopback address (JOBQ_DOWNLOAD_ALLOW_PRIVATE)");
        return ERR_VALIDATION;
    }
    if (d->too_big) {
        unlinkat(d->dirfd, d->part, 0);
        snprintf(msg, len, "the file is larger than args.max_bytes");
        return ERR_VALIDATION;
    }
    if (rc == CURLE_OK && status >= 200 && status < 300)
        return finish_file(t, d, result, msg, len);
    if (d->range_mismatch) {
        unlinkat(d->dirfd, d->part, 0);
        snprintf(msg, len, "the server sent a range other than the one asked for; starting over");
        return ERR_UNAVAILABLE;
    }
    if (rc != CURLE_OK && !(status >= 400)) {
        snprintf(msg, len, "%s%s%s", curl_easy_strerror(rc), t->errbuf[0] ? ": " : "", t->errbuf);
        return runner_err_for_curl(rc); /* the .part stays, for a Range resume */
    }
    err_t type = runner_err_for_status(status);
    if (!err_retried(type) || status == 416)
        unlinkat(d->dirfd, d->part, 0); /* no attempt will resume this */
    snprintf(msg, len, "HTTP %ld", status);
    json_t *body = json_stringn(t->excerpt.p ? t->excerpt.p : "", t->excerpt.len);
    *context = json_pack("{s:i, s:o}", "status", (int)status, "body", body ? body : json_null());
    return status == 416 ? ERR_UNAVAILABLE : type;
}

static void cleanup(task_t *t)
{
    dl_t *d = t->kind_data;
    if (!d)
        return;
    if (d->fd >= 0)
        close(d->fd);
    if (d->dirfd >= 0)
        close(d->dirfd);
    EVP_MD_CTX_free(d->sha);
    free(d);
    t->kind_data = NULL;
}

const runner_kind_t runner_download = {
    .name = "download",
    .queue = "download",
    .type = "http.download",
    .prepare = prepare,
    .outcome = outcome,
    .cleanup = cleanup,
};
