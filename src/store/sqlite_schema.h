/* sqlite_schema: the SQLite backend's embedded, ordered migrations. */
#ifndef JOBQ_SQLITE_SCHEMA_H
#define JOBQ_SQLITE_SCHEMA_H

int sqlite_schema_latest(void);
/* SQL that takes a database from version-1 to version; NULL if none. */
const char *sqlite_schema_migration(int version);

#endif
