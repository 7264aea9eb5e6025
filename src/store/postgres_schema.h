#ifndef JOBQ_STORE_POSTGRES_SCHEMA_H
#define JOBQ_STORE_POSTGRES_SCHEMA_H

/* The PostgreSQL migrations (postgres_schema.c): how many, and each one's SQL. */
int postgres_schema_latest(void);
const char *postgres_schema_migration(int version); /* 1..latest, else NULL */

#endif
