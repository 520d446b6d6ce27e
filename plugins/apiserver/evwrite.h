/* plugins/apiserver/evwrite.h — a kubelet's Event created on its msgpack
 * bytes rather than on a JSON tree of them. A kubelet reports three
 * events for each pod it starts (Pulled, Created, Started) and one for
 * each it stops: the API server's most frequent create. The two fields
 * the server sets are spliced into the bytes as they came, which are
 * checked in one pass. The bytes are those rest.c's JSON path stores, byte for
 * byte (tests/unit/test_api_evwrite.c); every other shape is left to
 * that path, which says what to do about it.
 */
#ifndef KUBUS_APISERVER_EVWRITE_H
#define KUBUS_APISERVER_EVWRITE_H

#include "podwrite.h" /* enum api_pstat */

/* The core/v1 Event `data` (len bytes: a create's object) as the JSON
 * path stores it in namespace `ns`, with metadata.uid `uid` and
 * metadata.creationTimestamp `now`: the bytes in *out (malloc'd),
 * *outlen, its name in name[256].
 *
 * JSON for anything but the legacy Event a kubelet writes, valid as it
 * is: apiVersion v1, kind Event; metadata of a valid name (under 256
 * bytes) and namespace `ns` only; involvedObject of text fields only,
 * its namespace `ns`; reason, message, type, reportingComponent,
 * reportingInstance as printable ASCII; source {component, host};
 * firstTimestamp and lastTimestamp as decoding writes them back; count
 * from 0 to 2^31-1. No eventTime, series, related, action, unknown or
 * repeated key, bin for a string, or empty time. */
enum api_pstat api_event_create_mp(const void *data, size_t len, const char *ns,
    const char *uid, const char *now, char **out, size_t *outlen, char name[256]);

#endif
