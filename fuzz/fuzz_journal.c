/* Fuzz: a journal file as the disk might hand it back after a crash or
 * damage. Replay must stop cleanly wherever the bytes stop making sense,
 * and every record that passes its crc must decode or be refused, never
 * read out of bounds. The first byte picks the mode: even, the input is
 * the file as it is; odd, the input is records (u8 kind, u8 length,
 * payload) framed with valid crcs, so the decoder sees arbitrary payloads
 * that random bytes would almost never get past the crc. Even with bit 1
 * set, the input after its second byte is split between the journal's two
 * files at a point the second byte picks (two generations in any order,
 * stale or torn), so replay's choice and order of files is fuzzed too. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/journal.h"
#include "store/store_internal.h"

static int decode(void *ud, uint8_t kind, const uint8_t *p, size_t n)
{
    (void)ud;
    op_t *op = store_record_read(kind, p, n);
    if (op)
        store_free_op(op);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], second[80];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/jobq-fuzz-journal-%d", (int)getpid());
        snprintf(second, sizeof second, "%s%s", path, JOURNAL_SECOND_SUFFIX);
    }
    bool split = size >= 2 && (data[0] & 3) == 2;
    size_t cut = split ? 2 + (size - 2) * data[1] / 256 : size;
    FILE *f = fopen(path, "wb"), *g = fopen(second, "wb");
    if (f && (size == 0 || !(data[0] & 1)))
        fwrite(data + (split ? 2 : 0), 1, cut - (split ? 2 : 0), f);
    if (g && split)
        fwrite(data + cut, 1, size - cut, g);
    if (f)
        fclose(f);
    if (g)
        fclose(g);
    if (!f || !g)
        return 0;
    char err[256];
    journal_t *j = journal_open(path, false, err, sizeof err);
    if (!j)
        return 0;
    if (size > 0 && (data[0] & 1)) {
        journal_reset(j, 1);
        for (size_t i = 1; i + 2 <= size;) {
            size_t n = data[i + 1];
            if (i + 2 + n > size)
                n = size - i - 2;
            journal_add(j, data[i], data + i + 2, n);
            i += 2 + n;
        }
        journal_commit(j, err, sizeof err);
    }
    uint64_t gen;
    journal_replay(j, 0, &gen, decode, NULL, err, sizeof err);
    journal_close(j);
    return 0;
}
