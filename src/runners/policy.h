/*
 * policy: what a job's args may make a built-in runner touch: which URLs,
 * header lines, peers and paths. Every check here sees bytes a producer
 * chose, so each is a pure function with a fuzz harness (fuzz/).
 *
 * Peers are an allow-list, not a deny-list: only globally routable unicast
 * addresses are public, so an address form nobody thought of ("[::]",
 * "0.0.0.0", an IPv4-mapped or NAT64 loopback, 6to4 around a private
 * address) is refused by default. Any thread.
 */
#ifndef JOBQ_RUNNERS_POLICY_H
#define JOBQ_RUNNERS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define RUNNER_URL_MAX 8192
#define RUNNER_HEADER_MAX 1000 /* one "Name: value" line */

/* An http:// or https:// URL with a host, as libcurl's URL parser reads
 * it (the parser that will fetch it), at most RUNNER_URL_MAX bytes. */
bool runner_url_valid(const char *url);
/* A header a job may add: a token name (not Host, Content-Length or
 * Transfer-Encoding, which would reframe the request) and a one-line value. */
bool runner_header_valid(const char *name, const char *value);
/* A relative path inside the download folder: no leading or trailing /,
 * no empty, "." or ".." segment, no control byte, segments of at most
 * 200 bytes, at most 1023 bytes in all. */
bool runner_path_valid(const char *rel);

/* IPv4 outside every special-purpose block (RFC 6890), or IPv6 in
 * 2000::/3 outside documentation (2001:db8::/32), 6to4 (2002::/16) and
 * Teredo (2001::/32). Anything else, and non-IP families, is not. */
bool runner_address_public(const struct sockaddr *sa);

#endif
