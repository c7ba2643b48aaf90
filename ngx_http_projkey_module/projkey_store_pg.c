
/*
 * projkey: the PostgreSQL engine of the key store (see projkey_store.h and
 * projkey_store_engine.h); the only file that includes <libpq-fe.h>.
 */


#include "projkey_store_engine.h"


static projkey_store_rc_e projkey_pg_open(projkey_store_t *st,
    const char *uri, int busy_timeout_ms);
static void projkey_pg_close(projkey_store_t *st);


/* the engine's operations: only open and close so far */
const projkey_store_ops_t  projkey_store_pg_ops = {
    "PostgreSQL",
    0,
    projkey_pg_open,
    projkey_pg_close,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL
};


static projkey_store_rc_e
projkey_pg_open(projkey_store_t *st, const char *uri, int busy_timeout_ms)
{
    projkey_store_set_errmsg(st, "a PostgreSQL database is not supported "
                             "yet");
    return PROJKEY_STORE_ERROR;
}


static void
projkey_pg_close(projkey_store_t *st)
{
}
