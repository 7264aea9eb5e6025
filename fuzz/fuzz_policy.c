/*
 * The runners' checks on what a job may reach (runners/policy.h). Input:
 * one byte of mode, then the bytes checked. Each accepted value is held
 * to an independent statement of the rule, so a check that lets through
 * what it should not is a finding, not only a crash.
 */
#include "fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runners/policy.h"

static void path(const char *p)
{
    if (!runner_path_valid(p))
        return;
    if (p[0] == '/' || strstr(p, "//") || strlen(p) >= 1024)
        abort();
    char copy[1024];
    strcpy(copy, p);
    for (char *save = NULL, *seg = strtok_r(copy, "/", &save); seg; seg = strtok_r(NULL, "/", &save))
        if (!strcmp(seg, ".") || !strcmp(seg, "..") || strlen(seg) > 200)
            abort();
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20)
            abort();
}

static void address(const uint8_t *d, size_t n)
{
    if (n >= 16) {
        struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
        memcpy(&a.sin6_addr, d, 16);
        if (runner_address_public((struct sockaddr *)&a) &&
            (IN6_IS_ADDR_LOOPBACK(&a.sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr) ||
             IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) || IN6_IS_ADDR_LINKLOCAL(&a.sin6_addr) ||
             IN6_IS_ADDR_MULTICAST(&a.sin6_addr) || (d[0] & 0xfe) == 0xfc))
            abort();
    }
    if (n >= 4) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        memcpy(&a.sin_addr, d, 4);
        uint32_t h = ntohl(a.sin_addr.s_addr);
        if (runner_address_public((struct sockaddr *)&a) &&
            ((h >> 24) == 127 || (h >> 24) == 10 || (h >> 24) == 0 || (h >> 28) >= 14 ||
             (h & 0xffff0000) == 0xc0a80000 || (h & 0xfff00000) == 0xac100000 ||
             (h & 0xffff0000) == 0xa9fe0000))
            abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 4) {
    case 0:
        if (runner_url_valid(text) && strncasecmp(text, "http", 4) != 0)
            abort();
        break;
    case 1: {
        size_t n = strlen(text);
        const char *value = n + 1 < size - 1 ? text + n + 1 : "";
        if (runner_header_valid(text, value) && (strpbrk(text, ":\r\n ") || strpbrk(value, "\r\n")))
            abort();
        break;
    }
    case 2: path(text); break;
    default: address(data + 1, size - 1); break;
    }
    free(text);
    return 0;
}
