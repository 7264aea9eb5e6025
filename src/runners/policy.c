/* What job args may reach; see policy.h. */
#include "runners/policy.h"

#include <curl/curl.h>
#include <strings.h>

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

bool runner_url_valid(const char *url)
{
    if (!url || strlen(url) > RUNNER_URL_MAX)
        return false;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] &&
              (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

bool runner_header_valid(const char *name, const char *value)
{
    static const char *const reserved[] = { "host", "content-length", "transfer-encoding" };
    size_t n = strlen(name);
    if (n == 0 || n + strlen(value) + 2 > RUNNER_HEADER_MAX)
        return false;
    for (const char *c = name; *c; c++) /* RFC 9110 token characters */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *c)))
            return false;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return false;
    for (const unsigned char *c = (const unsigned char *)value; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
            return false;
    return true;
}

bool runner_path_valid(const char *rel)
{
    size_t n = strlen(rel);
    if (n == 0 || n >= 1024 || rel[0] == '/' || rel[n - 1] == '/')
        return false;
    size_t seg = 0;
    for (const char *c = rel;; c++) {
        if (*c == '/' || *c == '\0') {
            const char *start = c - seg;
            if (seg == 0 || seg > 200 || (seg == 1 && start[0] == '.') ||
                (seg == 2 && start[0] == '.' && start[1] == '.'))
                return false;
            if (*c == '\0')
                return true;
            seg = 0;
        } else if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            return false;
        } else {
            seg++;
        }
    }
}
