/* plugins/apiserver/podstatus.h — a merge patch of pods/NAME/status (a
 * kubelet's status update) made on the watch cache's bytes of the pod:
 * only the status is decoded into JSON, merged with the patch and decoded
 * as admission decodes it; the rest of the pod is packed again as it was
 * (mpedit.c). The bytes are those do_patch's JSON path stores for the same
 * patch: that path decodes the whole pod, merges, keeps everything but the
 * status from the old pod (carry_over), admits the whole pod — whose
 * metadata and spec are the old ones, admitted when they were written — and
 * encodes it all again.
 */
#ifndef KUBUS_APISERVER_PODSTATUS_H
#define KUBUS_APISERVER_PODSTATUS_H

#include "api.h"

enum api_pstat {
	API_PSTAT_OK,
	API_PSTAT_JSON,  /* a case left to the JSON path, which says what to */
	API_PSTAT_NOMEM,
};

/* The pod as the cache holds it (data, len: api_cache_stored's bytes,
 * resourceVersion last in metadata) with the merge patch `patch` applied
 * through the status subresource of r (the pods resource): the bytes to
 * store in *out (malloc'd), *outlen. `node`: a node principal's name,
 * which the pod's spec.nodeName must be (NULL for anyone else).
 *
 * JSON for all that the JSON path does more about: a patch other than
 * {"status": {…}}; bytes that do not unpack or are not a Pod of v1 with
 * a metadata map ending in its resourceVersion; a pod being deleted (a
 * write may finish it); a status that is not a map; a node that is not
 * the pod's (403); a patched status with unknown fields (warnings, or
 * Strict's 400) or that admission's decoding refuses (400). */
enum api_pstat api_pod_status_mp_rv(const struct api_resource *r, const void *data,
    size_t len, const json_t *patch, const char *node, char **out, size_t *outlen);

#endif
