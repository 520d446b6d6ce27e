/* plugins/apiserver/podbind.h — what pods/NAME/binding does to the pod:
 * spec.nodeName set, status.conditions' PodScheduled replaced by a new
 * one (status True, lastTransitionTime now) at the end. Once on the
 * stored msgpack bytes (the usual path), once on a decoded pod (for the
 * objects the first one leaves alone); both give the same object.
 */
#ifndef KUBUS_APISERVER_PODBIND_H
#define KUBUS_APISERVER_PODBIND_H

#include "api.h"

enum api_bind {
	API_BIND_OK,
	API_BIND_ASSIGNED, /* spec.nodeName is set already: *cur says to what */
	API_BIND_DELETING, /* metadata.deletionTimestamp is there */
	API_BIND_JSON,     /* a shape the bytes path leaves to the JSON path */
	API_BIND_NOMEM,
};

/* The pod as stored (data, len: msgpack without resourceVersion) bound to
 * node at now (RFC 3339): the new bytes in *out (malloc'd), *outlen.
 * ASSIGNED: the node in *cur, *curlen, borrowed from data. JSON when the
 * bytes do not unpack (msgpack-c's depth limit), the pod or its spec or
 * status is not a map, or its metadata has a resourceVersion. */
enum api_bind api_pod_bind_mp(const void *data, size_t len, const char *node,
    const char *now, char **out, size_t *outlen, const char **cur, size_t *curlen);

/* The same on the bytes the watch cache keeps (api_cache_stored): the
 * stored bytes with metadata.resourceVersion last in metadata, as
 * api_mp_with_rv splices it; *out is the stored object bound, without it:
 * the bytes api_pod_bind_mp makes of the stored bytes. JSON also when the
 * last metadata entry is not a resourceVersion. */
enum api_bind api_pod_bind_mp_rv(const void *data, size_t len, const char *node,
    const char *now, char **out, size_t *outlen, const char **cur, size_t *curlen);

/* The same on a decoded pod, changed in place. ASSIGNED: *cur borrowed
 * from pod. */
enum api_bind api_pod_bind_json(json_t *pod, const char *node, const char *now,
    const char **cur);

#endif
