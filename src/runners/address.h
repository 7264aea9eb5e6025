/*
 * address: which peers a download may reach. An allow-list, not a
 * deny-list: only globally routable unicast addresses are public, so an
 * address form nobody thought of ("[::]", "0.0.0.0", an IPv4-mapped or
 * NAT64 loopback, 6to4 around a private address) is refused by default.
 * Pure functions, any thread.
 */
#ifndef JOBQ_RUNNERS_ADDRESS_H
#define JOBQ_RUNNERS_ADDRESS_H

#include <stdbool.h>
#include <sys/socket.h>

/* IPv4 outside every special-purpose block (RFC 6890), or IPv6 in
 * 2000::/3 outside documentation (2001:db8::/32), 6to4 (2002::/16) and
 * Teredo (2001::/32). Anything else, and non-IP families, is not. */
bool runner_address_public(const struct sockaddr *sa);

#endif
