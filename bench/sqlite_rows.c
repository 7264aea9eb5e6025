#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/sqlite_schema.h"
/* Instructions SQLite spends per new job row when K rows share one INSERT
 * (store/sqlite_rows.c), random ids as Faktory jids are, jobq's pragmas,
 * transactions of 512 rows. usage: sqlite_rows ROWS K DB (bench/sqlite_rows.sh) */
int main(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: sqlite_rows ROWS K DB\n"), 2;
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    int n = atoi(argv[1]), k = atoi(argv[2]);
    if (k < 1 || k > 64)
        return 2;
    remove(argv[3]);
    sqlite3 *db;
    if (sqlite3_open(argv[3], &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-8192;", 0, 0, 0))
        return 1;
    for (int v = 1; v <= sqlite_schema_latest(); v++)
        if (sqlite3_exec(db, sqlite_schema_migration(v), 0, 0, 0) != SQLITE_OK)
            return 1;
    char sql[20000] = "INSERT INTO jobs(id,queue,type,state,priority,created_at,updated_at,run_at,doc) VALUES";
    for (int r = 0; r < k; r++)
        sprintf(sql + strlen(sql), "%s(?,?,?,?,?,?,?,?,?)", r ? "," : "");
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, 0) != SQLITE_OK)
        return fprintf(stderr, "%s\n", sqlite3_errmsg(db)), 1;
    static const char blob[141];
    char ids[64][40];
    for (int b = 0; b < n; b += 512) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0);
        for (int i = b; i < b + 512 && i < n; i += k) {
            for (int r = 0; r < k; r++) {
                int x = i + r, c = r * 9;
                snprintf(ids[r], 40, "%08x%024d", (unsigned)(x * 2654435761u), x);
                sqlite3_bind_text(s, c + 1, ids[r], -1, SQLITE_STATIC);
                sqlite3_bind_text(s, c + 2, "default", -1, SQLITE_STATIC);
                sqlite3_bind_text(s, c + 3, "bench", -1, SQLITE_STATIC);
                sqlite3_bind_text(s, c + 4, "queued", -1, SQLITE_STATIC);
                sqlite3_bind_int(s, c + 5, 2);
                for (int q = 6; q <= 8; q++)
                    sqlite3_bind_int64(s, c + q, 1764590000000LL + x);
                sqlite3_bind_blob(s, c + 9, blob, sizeof blob, SQLITE_STATIC);
            }
            if (sqlite3_step(s) != SQLITE_DONE)
                return fprintf(stderr, "%s\n", sqlite3_errmsg(db)), 1;
            sqlite3_reset(s);
        }
        sqlite3_exec(db, "COMMIT", 0, 0, 0);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    remove(argv[3]);
    return 0;
}
