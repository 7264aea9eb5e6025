/*
 * client: the CLI's HTTP client (libcurl) for a running jobq server.
 *
 * One blocking request at a time; the caller owns the returned body.
 */
#ifndef JOBQ_CLIENT_H
#define JOBQ_CLIENT_H

#include <jansson.h>

typedef struct client {
    char base[512]; /* "http://127.0.0.1:7420" */
    char auth[300]; /* "Authorization: Bearer ..." from JOBQ_API_KEY, or "" */
} client_t;

/* Resolves the server address: --server, else JOBQ_URL, else JOBQ_LISTEN;
 * and the API key from JOBQ_API_KEY (an environment variable, never a flag:
 * command lines are visible to every user of the machine). */
void client_init(client_t *c, const char *server_flag);

/* Sends body (may be NULL) and parses the JSON reply into *out (NULL when
 * the reply has no body). Returns the HTTP status, or -1 with a message in
 * err when the server cannot be reached. */
int client_request(const client_t *c, const char *method, const char *path, json_t *body,
                   json_t **out, char *err, size_t errlen);

#endif
