/* Public addresses; see address.h. */
#include "runners/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static bool in4(uint32_t a, uint32_t net, int bits)
{
    uint32_t mask = bits ? ~0u << (32 - bits) : 0;
    return (a & mask) == net;
}

static bool public4(uint32_t a)
{
    static const struct { uint32_t net; int bits; } special[] = {
        { 0x00000000, 8 },  { 0x0a000000, 8 },  { 0x64400000, 10 }, { 0x7f000000, 8 },
        { 0xa9fe0000, 16 }, { 0xac100000, 12 }, { 0xc0000000, 24 }, { 0xc0000200, 24 },
        { 0xc0a80000, 16 }, { 0xc6120000, 15 }, { 0xc6336400, 24 }, { 0xcb007100, 24 },
        { 0xe0000000, 4 },  { 0xf0000000, 4 },
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (in4(a, special[i].net, special[i].bits))
            return false;
    return true;
}

static bool public6(const unsigned char *b)
{
    if ((b[0] & 0xe0) != 0x20) /* 2000::/3 only: no ::, ::1, mapped, NAT64, ULA, link-local */
        return false;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) /* documentation */
        return false;
    if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: wraps any IPv4 address */
        return false;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) /* Teredo */
        return false;
    return true;
}

bool runner_address_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return public4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return public6(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return false;
}
