/* kubus/client.h — the Kubernetes API from a plugin.
 *
 * Controllers, the scheduler and the kubelet never touch the store: they
 * call the API server's `api` bus service, as every Kubernetes component
 * calls kube-apiserver. This header gives them what client-go gives Go
 * programs: typed calls, informers (a list+watch cache with event
 * callbacks), work queues, and leader election on a Lease.
 *
 * Objects are msgpack maps with Kubernetes' JSON field names (kb_body).
 * The `api` service's body shapes are documented in
 * plugins/apiserver/busapi.c; these calls build them.
 */
#ifndef KUBUS_CLIENT_H
#define KUBUS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A resource: group ("" for core), version, plural. */
struct kb_gvr {
	const char *group;
	const char *version;
	const char *resource;
};

extern const struct kb_gvr KB_GVR_NAMESPACES, KB_GVR_NODES, KB_GVR_PODS,
    KB_GVR_SERVICES, KB_GVR_ENDPOINTS, KB_GVR_CONFIGMAPS, KB_GVR_SECRETS,
    KB_GVR_SERVICEACCOUNTS, KB_GVR_EVENTS, KB_GVR_DEPLOYMENTS,
    KB_GVR_REPLICASETS, KB_GVR_ENDPOINTSLICES, KB_GVR_LEASES;

/* --- calls ------------------------------------------------------------------
 * Each returns 0 and the reply in *out (the object, or the List; free it
 * with kb_msg_free), or a kb_err (KB_ENOTFOUND, KB_ECONFLICT, KB_EEXIST,
 * KB_EINVAL, KB_EFORBIDDEN, …) with *out holding the error reply when
 * there was one: kb_msg_err() gives the Status message, kb_msg_body() the
 * Status itself. `out` may be NULL. ns is NULL for cluster-scoped
 * resources. Bodies are taken whatever the result. */

int kb_api_get(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *name, kb_msg **out);
/* label_selector / field_selector may be NULL. */
int kb_api_list(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *label_selector, const char *field_selector, kb_msg **out);
int kb_api_create(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    kb_body *obj, kb_msg **out);
/* sub: NULL, "status", "scale". obj carries metadata.resourceVersion for
 * optimistic concurrency (KB_ECONFLICT when stale). */
int kb_api_update(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *name, const char *sub, kb_body *obj, kb_msg **out);
/* type: "merge", "strategic", "json" or "apply". */
int kb_api_patch(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *name, const char *sub, const char *type, kb_body *patch,
    kb_msg **out);
/* options: a DeleteOptions map ({propagationPolicy, gracePeriodSeconds,
 * preconditions}) or NULL. */
int kb_api_delete(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *name, kb_body *options, kb_msg **out);

/* --- informers ---------------------------------------------------------------
 * An informer lists a resource, then watches it from the list's
 * resourceVersion, keeps every object in a local cache, and calls its
 * handlers for each change: level-triggered controllers enqueue keys from
 * them and read the cache. On a 410 Expired (or a lost watch) it relists
 * and delivers the difference as adds, updates and deletes, so no change is
 * ever lost; every resync_ms (0: never) it calls update(obj, obj) for each
 * cached object.
 *
 * Handlers run one at a time, in revision order, on the informer's own
 * thread or, while it has nothing queued, on the thread of the plugin's
 * bus endpoint that brought the event (a hand-over less per event);
 * objects are borrowed for the call. They must not block for long, and a
 * request from a handler to a service of the same plugin waits for the
 * handler's own thread. */

struct kb_informer;

struct kb_informer_handlers {
	void (*add)(void *arg, const msgpack_object *obj);
	void (*update)(void *arg, const msgpack_object *old,
	    const msgpack_object *obj);
	void (*del)(void *arg, const msgpack_object *obj);
};

struct kb_informer_opts {
	const char *ns;              /* NULL: all namespaces */
	const char *label_selector;  /* NULL: all */
	const char *field_selector;  /* NULL: all, e.g. "spec.nodeName=n1" */
	int64_t resync_ms;
};

struct kb_informer *kb_informer_new(kb_ctx *ctx, const struct kb_gvr *r,
    const struct kb_informer_opts *opts,
    const struct kb_informer_handlers *h, void *arg);
/* Start listing and watching (after the plugin's init: needs the bus). */
int kb_informer_start(struct kb_informer *inf);
/* Wait until the first list has been delivered; false on timeout. */
bool kb_informer_wait_synced(struct kb_informer *inf, int timeout_ms);
bool kb_informer_synced(struct kb_informer *inf);
/* The cached object (a new reference to its body), or NULL. */
kb_body *kb_informer_get(struct kb_informer *inf, const char *ns,
    const char *name);
/* Call fn for each cached object (borrowed), under the cache's lock:
 * fn must not call back into the informer. */
void kb_informer_each(struct kb_informer *inf,
    void (*fn)(void *arg, const msgpack_object *obj), void *arg);
size_t kb_informer_len(struct kb_informer *inf);
/* An index over the cache, as client-go's Indexer: key writes an object's
 * index key (a NUL-terminated string under KB_INDEX_KEY_MAX bytes) into
 * buf and returns true, or returns false when the object has none. One
 * per informer, set before kb_informer_start (else KB_ESTATE; KB_EINVAL
 * for a NULL key). The index changes with the cache, under its lock. */
#define KB_INDEX_KEY_MAX 320
int kb_informer_set_index(struct kb_informer *inf,
    bool (*key)(const msgpack_object *obj, char *buf, size_t len));
/* Call fn for each cached object whose index key is ikey, as
 * kb_informer_each does for all (under the cache's lock: fn must not call
 * back into the informer). Nothing without an index. */
void kb_informer_each_indexed(struct kb_informer *inf, const char *ikey,
    void (*fn)(void *arg, const msgpack_object *obj), void *arg);
/* A view per object, as client-go's transform: what a controller reads of
 * each object at every reconcile (a pointer to its metadata, its owner's
 * uid, a parsed timestamp), derived once per version instead of looked up
 * in the msgpack maps at each pass. make fills `view` (size bytes, zeroed,
 * aligned for any type) from obj when that version enters the cache —
 * from the first list, an add, an update or a relist; never for a resync,
 * which changes nothing — and the view lives beside the cached body until
 * the next version replaces it, a delete removes it or the informer is
 * freed. Pointers a view keeps into obj stay valid as long as the body
 * does: a body never changes once cached and is freed only after its view
 * is (see the calls below for how long each caller may use them).
 *
 * make runs on the thread that applies the change (the informer's own or
 * a bus dispatch thread, one change at a time), before the cache's lock
 * is taken: it must not block and must not call into the informer. Set
 * before kb_informer_start (else KB_ESTATE); KB_EINVAL for a NULL make or
 * a size of 0 or above KB_INFORMER_VIEW_MAX. */
#define KB_INFORMER_VIEW_MAX 1024
int kb_informer_set_view(struct kb_informer *inf, size_t size,
    void (*make)(const msgpack_object *obj, void *view));
/* As kb_informer_get, and the object's view copied into `view` (may be
 * NULL; untouched without a view or when the object is not cached): its
 * pointers are valid while the returned body is held. */
kb_body *kb_informer_get_view(struct kb_informer *inf, const char *ns,
    const char *name, void *view);
/* As kb_informer_each and kb_informer_each_indexed, fn also given each
 * object's view (NULL without one), borrowed like obj for the call. */
void kb_informer_each_view(struct kb_informer *inf,
    void (*fn)(void *arg, const msgpack_object *obj, const void *view),
    void *arg);
void kb_informer_each_indexed_view(struct kb_informer *inf, const char *ikey,
    void (*fn)(void *arg, const msgpack_object *obj, const void *view),
    void *arg);
/* Stop watching and wait for the handler thread; then free. */
void kb_informer_free(struct kb_informer *inf);

/* "ns/name" (or "name" when cluster-scoped) of an object, into buf. */
const char *kb_object_key(const msgpack_object *obj, char *buf, size_t len);

/* An RFC 3339 time as Kubernetes writes them (metav1.Time, MicroTime):
 * "2006-01-02T15:04:05" then an optional fraction, then "Z" or ±hh:mm,
 * nothing after; the len bytes at s need no NUL. Into *ms, milliseconds
 * since the epoch (the fraction cut to ms). false when it is not one. */
bool kb_time_parse(const char *s, size_t len, int64_t *ms);

/* --- work queues ---------------------------------------------------------------
 * Keys (strings) waiting to be reconciled. A key is queued once however
 * often it is added; a key being processed that is added again is queued
 * again after kb_workqueue_done. Failed keys come back after an exponential
 * backoff per key (5 ms doubling, capped at 1000 s as in client-go), until
 * kb_workqueue_forget. */

struct kb_workqueue;

struct kb_workqueue *kb_workqueue_new(const char *name);
void kb_workqueue_add(struct kb_workqueue *q, const char *key);
void kb_workqueue_add_after(struct kb_workqueue *q, const char *key,
    int64_t delay_ms);
void kb_workqueue_add_rate_limited(struct kb_workqueue *q, const char *key);
void kb_workqueue_forget(struct kb_workqueue *q, const char *key);
/* Times the key has been retried since the last forget. */
int kb_workqueue_retries(struct kb_workqueue *q, const char *key);
/* Wait for a key (malloc'd into *key; the caller frees it and then calls
 * kb_workqueue_done). 0, KB_ETIMEOUT, or KB_ECLOSED after shutdown. */
int kb_workqueue_get(struct kb_workqueue *q, char **key, int timeout_ms);
void kb_workqueue_done(struct kb_workqueue *q, const char *key);
size_t kb_workqueue_len(struct kb_workqueue *q);
/* Wake every waiter with KB_ECLOSED; then free with kb_workqueue_free. */
void kb_workqueue_shutdown(struct kb_workqueue *q);
void kb_workqueue_free(struct kb_workqueue *q);

/* --- leader election ------------------------------------------------------------
 * One active instance among several (two control-plane hosts running the
 * same controller): the holder of a coordination.k8s.io/v1 Lease, renewed
 * every lease_ms/3, taken over by another candidate when not renewed within
 * lease_ms. started() runs when this instance becomes the leader, stopped()
 * when it loses the lease (it must then stop acting at once). Both run on
 * the elector's thread. */

struct kb_leader;

struct kb_leader_opts {
	const char *ns;         /* "kube-system" */
	const char *name;       /* the Lease, e.g. "kube-scheduler" */
	const char *identity;   /* this candidate, e.g. "HOST_instance" */
	int64_t lease_ms;       /* 15000 */
	void (*started)(void *arg);
	void (*stopped)(void *arg);
	void *arg;
};

struct kb_leader *kb_leader_new(kb_ctx *ctx, const struct kb_leader_opts *o);
int kb_leader_start(struct kb_leader *l);
bool kb_leader_is_leader(struct kb_leader *l);
/* Give the lease up (if held) and stop; then free. */
void kb_leader_free(struct kb_leader *l);

/* --- concurrent calls ------------------------------------------------------------
 * A batch sends calls without waiting for each reply (as client-go's
 * controllers issue creates from goroutines), at most max_inflight at a
 * time: a kb_api_batch_* call blocks while that many are out. Each takes
 * its body whatever it returns (as the calls above) and returns 0 once the
 * call is sent, or the error that kept it from being sent (done is then
 * not called). done (may be NULL) is called once per sent call with what
 * the blocking call would have returned — rc, and the reply or error reply
 * (borrowed for the call, may be NULL) — on a bus thread: it must not block
 * and must not call kb_call or the batch. kb_api_batch_wait returns when
 * every call sent so far has been answered. Calls may be sent from several
 * threads at once; wait and free from one, once none sends any more. */

struct kb_api_batch;
typedef void (*kb_api_done_fn)(void *arg, int rc, const kb_msg *rep);

struct kb_api_batch *kb_api_batch_new(kb_ctx *ctx, int max_inflight);
int kb_api_batch_create(struct kb_api_batch *b, const struct kb_gvr *r,
    const char *ns, kb_body *obj, kb_api_done_fn done, void *arg);
int kb_api_batch_update(struct kb_api_batch *b, const struct kb_gvr *r,
    const char *ns, const char *name, const char *sub, kb_body *obj,
    kb_api_done_fn done, void *arg);
int kb_api_batch_patch(struct kb_api_batch *b, const struct kb_gvr *r,
    const char *ns, const char *name, const char *sub, const char *type,
    kb_body *patch, kb_api_done_fn done, void *arg);
int kb_api_batch_delete(struct kb_api_batch *b, const struct kb_gvr *r,
    const char *ns, const char *name, kb_body *options, kb_api_done_fn done,
    void *arg);
void kb_api_batch_wait(struct kb_api_batch *b);
/* Waits for the calls still out, then frees. */
void kb_api_batch_free(struct kb_api_batch *b);

/* --- events ------------------------------------------------------------------------
 * core/v1 Events about objects, recorded as client-go's EventRecorder and
 * EventCorrelator do, posted without waiting (the caller never waits for
 * the API server):
 * - an Event equal to one recorded before (same object, field path, type,
 *   reason and message) patches that Event's count, lastTimestamp and
 *   message instead of making another;
 * - with `aggregate` (client-go's EventAggregatorByReason, on for every
 *   controller): once ten different messages of one type and reason about
 *   one object came within ten minutes, the rest make one Event "(combined
 *   from similar events): <message>" and patch its count;
 * - a token bucket per object (burst 25, then one every 5 minutes: the
 *   spam filter) drops what goes over it, unless `no_spam_filter` (the
 *   events.k8s.io recorder, which the scheduler uses, has none); a repeat
 *   that is dropped still counts, so the next patch carries the true count;
 * - `qps` and `burst`, the recorder's client's own limit (the kubelet's
 *   eventRecordQPS and eventBurst; a scheduler's API client): a request
 *   over it waits its turn in a queue of at most 1000 (client-go's
 *   maxQueuedEvents), past which it is dropped. A held request goes when
 *   a token is back: the recorder asks `later` (ms from now) for a call to
 *   kb_recorder_flush, or, without `later`, runs a thread of its own.
 * At most one request per Event is in flight; a repeat meanwhile is sent
 * when it is answered, so a patch never overtakes its create. */

struct kb_recorder;

struct kb_recorder_opts {
	const char *component; /* source.component, reportingComponent */
	const char *host;      /* source.host (a kubelet's node), or NULL */
	const char *instance;  /* reportingInstance; NULL: host, else component */
	int qps, burst;        /* 0 qps: no limit of its own */
	bool aggregate;
	bool no_spam_filter;
	void (*later)(void *arg, int64_t ms);
	void *later_arg;
};

/* What an Event is about (involvedObject); NULL fields are left out. */
struct kb_event_ref {
	const char *api_version, *kind, *ns, *name, *uid, *field_path;
};

/* The options are copied. NULL when out of memory. */
struct kb_recorder *kb_recorder_new(kb_ctx *ctx, const struct kb_recorder_opts *o);
/* Held requests go from here on (a plugin's start); stop holds them
 * again (a plugin's stop), for kb_recorder_free to drop. */
void kb_recorder_start(struct kb_recorder *r);
void kb_recorder_stop(struct kb_recorder *r);
/* Post the held requests there are tokens for (what `later` asked for). */
void kb_recorder_flush(struct kb_recorder *r);
/* After the plugin's endpoint closed (no reply runs any more). */
void kb_recorder_free(struct kb_recorder *r);
/* Events dropped so far (the spam filter, a full queue). */
uint64_t kb_recorder_dropped(struct kb_recorder *r);
/* Record an Event ("Normal", or "Warning" when `warning`) about ref. */
void kb_eventf(struct kb_recorder *r, const struct kb_event_ref *ref,
    bool warning, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same about an object of api_version and kind: its metadata's
 * namespace, name and uid. */
void kb_event_obj(struct kb_recorder *r, const char *api_version,
    const char *kind, const msgpack_object *obj, bool warning,
    const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* --- counting calls and watch events (benchmarks) ---------------------------------- */

/* Off until kb_count_enable(true); then every request to the `api` bus
 * service counts under "call <instance> <op> <resource>[/<subresource>]"
 * (its body bytes under the same key capitalised, "Call …"), and every
 * watch event an informer applies under "event <instance> <resource>
 * <type>" (its bytes under "Event …"). Process-wide; for benchmarks, not for production use. */
void kb_count_enable(bool on);
bool kb_counting(void);
/* Add n to counter `key` when counting is on. */
void kb_count_add(const char *key, uint64_t n);
/* Every counter as "key<TAB>value\n" lines (malloc'd, NULL when there is
 * no memory); reset zeroes them after reading. */
char *kb_count_dump(bool reset);

#ifdef __cplusplus
}
#endif
#endif
