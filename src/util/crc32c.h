/*
 * crc32c: CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and SQLite's
 * WAL alternatives), the checksum of the store's journal records. Uses the
 * SSE4.2 instruction when the CPU has it (8 bytes per instruction: the
 * journal checks every byte it writes), else a table; both give the same
 * value. Thread-safe; no state beyond a table built on first use.
 */
#ifndef JOBQ_CRC32C_H
#define JOBQ_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over n bytes (start with 0). crc32c("123456789") is
 * 0xe3069283. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

#endif
