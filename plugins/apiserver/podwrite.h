/* plugins/apiserver/podwrite.h — the pod writes every pod sees, made on
 * the watch cache's bytes of the pod rather than on a JSON tree of it: a
 * kubelet's status merge patch, and a deletion (a controller's, which
 * starts the grace period of a running pod, and its kubelet's, which
 * ends it). Only what changes is built; the rest of the pod is packed
 * again as it was (mpedit.c). The bytes are those rest.c's JSON path
 * stores and answers, byte for byte (tests/unit/test_api_podwrite.c).
 * Each leaves the cases it does not cover to that path, which says what
 * to do about them.
 */
#ifndef KUBUS_APISERVER_PODWRITE_H
#define KUBUS_APISERVER_PODWRITE_H

#include "api.h"

enum api_pstat {
	API_PSTAT_OK,
	API_PSTAT_JSON,  /* a case left to the JSON path */
	API_PSTAT_NOMEM,
};

/* The pod as the cache holds it (data, len: api_cache_stored's bytes,
 * resourceVersion last in metadata) with the merge patch `patch` applied
 * through the status subresource of r (the pods resource): the bytes to
 * store in *out (malloc'd), *outlen. `node`: a node principal's name,
 * which the pod's spec.nodeName must be (NULL for anyone else).
 *
 * That path decodes the whole pod, merges, keeps everything but the
 * status from the old pod (carry_over), admits the whole pod — whose
 * metadata and spec are the old ones, admitted when they were written —
 * and encodes it all again; here only the status is decoded, merged and
 * decoded as admission decodes it — or, for a patch that sets each key
 * it names to a list or a scalar (a kubelet's), only the patch is
 * decoded, and the merged status is the old one's bytes with those keys'
 * values replaced or appended.
 *
 * JSON for: a patch other than {"status": {…}}; bytes that do not unpack
 * or are not a Pod of v1 with a metadata map ending in its
 * resourceVersion; a pod being deleted with no grace period left (a
 * write may finish it) or, unless the patch is flat, at all; a status
 * that is not a map; a node that is not the pod's (403); a patched status
 * with unknown fields (warnings, or Strict's 400) or that admission's
 * decoding refuses (400). */
enum api_pstat api_pod_status_mp_rv(const struct api_resource *r, const void *data,
    size_t len, const json_t *patch, const char *node, char **out, size_t *outlen);

/* A deletion of the pod (the cache's bytes, as above) with DeleteOptions
 * `opts` (NULL: none) at `now` (RFC 3339), by `node` (as above). *keep
 * says which write the JSON path makes:
 *   - true: the pod stays, being deleted (bound, running, with a grace
 *     period): *put is the pod to store, with its deletionTimestamp and
 *     deletionGracePeriodSeconds (the answer is what the store keeps);
 *   - false: the pod goes: *answer is the pod as deleted, with the
 *     resourceVersion it had (nothing to store).
 * JSON for: options other than gracePeriodSeconds, a uid precondition,
 * propagationPolicy Background and orphanDependents false; a pod with
 * finalizers (even none) or bytes as api_pod_status_mp_rv refuses; a uid
 * that is not the precondition's (409); a node that is not the pod's. */
enum api_pstat api_pod_delete_mp_rv(const void *data, size_t len, const json_t *opts,
    const char *node, const char *now, bool *keep, char **put, size_t *putlen,
    char **answer, size_t *anslen);

#endif
