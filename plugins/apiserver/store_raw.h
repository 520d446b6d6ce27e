/* plugins/apiserver/store_raw.h — the store's objects as their msgpack
 * bytes, for writers that change a few fields without a JSON tree (a pod's
 * binding). store.c; the JSON calls are in api.h.
 */
#ifndef KUBUS_APISERVER_STORE_RAW_H
#define KUBUS_APISERVER_STORE_RAW_H

#include "api.h"

/* The stored bytes of key (an object without metadata.resourceVersion) in
 * *data, *len, borrowed from *rep (kb_msg_free it after), and the key's
 * mod_revision. Errors as api_store_get's: 404 when absent, 500 when the
 * value is not bytes; *rep is NULL then. */
int api_store_get_raw(struct api_server *s, const char *key, kb_msg **rep,
    const char **data, size_t *len, int64_t *mod_rev, struct api_error *e);

/* Put an object's msgpack bytes (without metadata.resourceVersion) as
 * api_store_put does a JSON object: if_mod_rev (0: create, -1: any),
 * *rev the new revision, the watch cache told, the same errors. */
int api_store_put_raw(struct api_server *s, const char *key, const void *data,
    size_t len, int64_t if_mod_rev, int64_t *rev, struct api_error *e);

/* The same without waiting, as api_store_put_mp_async (the bytes are
 * copied before it returns; with want_mp, done gets them back with the
 * new resourceVersion spliced in). */
int api_store_put_raw_async(struct api_server *s, const char *key, const void *data,
    size_t len, int64_t if_mod_rev, bool want_mp, api_put_done done, void *arg,
    struct api_error *e);

#endif
