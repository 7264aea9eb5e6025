/* Fuzz: a journal file as the disk might hand it back after a crash or
 * damage. Replay must stop cleanly wherever the bytes stop making sense,
 * and every record that passes its crc must decode or be refused, never
 * read out of bounds. The first byte picks the mode: even, the input is
 * the file as it is; odd, the input is records (u8 kind, u8 length,
 * payload) framed with valid crcs, so the decoder sees arbitrary payloads
 * that random bytes would almost never get past the crc. */
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
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/jobq-fuzz-journal-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    if (size == 0 || !(data[0] & 1))
        fwrite(data, 1, size, f);
    fclose(f);
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
