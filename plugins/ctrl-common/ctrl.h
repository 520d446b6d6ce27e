/* plugins/ctrl-common/ctrl.h — what every controller plugin shares: the
 * informers + work queue + workers loop, and small object helpers
 * (owner references, label selectors, times, editing a msgpack object).
 *
 * Not a plugin and not the SDK: each ctrl-* plugin compiles these files
 * into its own .so (hidden symbols), so no plugin depends on another.
 */
#ifndef KUBUS_CTRL_COMMON_H
#define KUBUS_CTRL_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <kubus/kubus.h>
#include <kubus/client.h>

#define CTRL_MAX_INFORMERS 16
#define CTRL_MAX_WORKERS 16

/* The options every controller takes: CTRL_OPTS puts them in its table. */
struct ctrl_conf {
	int64_t workers;
	int64_t resync_ms;
	int64_t sync_timeout_ms;
	bool leader_elect;
	int64_t lease_ms;
	char *lease_name;
};

#define CTRL_OPTS(st, f)                                                        \
	KB_OPT_INT("workers", st, f.workers, "2", 1, CTRL_MAX_WORKERS,          \
	    "reconcile workers"),                                               \
	    KB_OPT_DURATION("resync", st, f.resync_ms, "5m",                    \
		"re-reconcile every object this often (0: never)"),             \
	    KB_OPT_DURATION("sync_timeout", st, f.sync_timeout_ms, "60s",       \
		"warn when the first lists take longer than this"),             \
	    KB_OPT_BOOL("leader_elect", st, f.leader_elect, "false",            \
		"reconcile only while holding a Lease in kube-system (several " \
		"control-plane hosts)"),                                        \
	    KB_OPT_DURATION("lease_duration", st, f.lease_ms, "15s",            \
		"how long a silent leader keeps the Lease"),                    \
	    KB_OPT_STR("lease_name", st, f.lease_name, NULL,                    \
		"the Lease (default kubus-<controller>)")

/* Reconcile one key. 0: done (forget its failures); a kb_err: retry
 * after the queue's backoff. May call ctrl_requeue_after itself. Runs on a
 * worker thread; a key is never reconciled by two workers at once. */
typedef int (*ctrl_sync_fn)(void *arg, const char *key);

struct ctrl {
	kb_ctx *ctx;
	const char *name;
	struct ctrl_conf conf;
	struct kb_workqueue *q;
	struct kb_informer *inf[CTRL_MAX_INFORMERS];
	size_t ninf;
	/* informers started on first need (ctrl_lazy_synced), not by
	 * ctrl_start: the workers do not wait for their first list */
	struct kb_informer *lazy[CTRL_MAX_INFORMERS];
	atomic_bool lazy_started[CTRL_MAX_INFORMERS];
	size_t nlazy;
	ctrl_sync_fn sync;
	void *arg;
	pthread_t th[CTRL_MAX_WORKERS];
	int nth;
	atomic_bool stopping;
	atomic_bool leading;
	struct kb_leader *leader;
	/* Events from ctrl_start on, as `component` ("<name>-controller"
	 * unless the plugin writes another before ctrl_start), aggregated
	 * and spam-filtered as kube-controller-manager's:
	 * kb_event_obj(c->events, …) */
	struct kb_recorder *events;
	char component[64];
};

int ctrl_init(struct ctrl *c, kb_ctx *ctx, const char *name,
    const struct ctrl_conf *conf, ctrl_sync_fn sync, void *arg);
/* A new informer on r (all namespaces) whose events go to h; started by
 * ctrl_start. NULL on no memory. */
struct kb_informer *ctrl_watch(struct ctrl *c, const struct kb_gvr *r,
    const struct kb_informer_handlers *h, void *arg);
/* An informer like ctrl_watch's that ctrl_start leaves stopped: it lists
 * and watches from the first ctrl_lazy_synced on it, so a controller pays
 * for a watch (every event of the resource, decoded and cached) only once
 * it has something that needs it — the endpoints controllers' pods while
 * no Service selects pods. */
struct kb_informer *ctrl_watch_lazy(struct ctrl *c, const struct kb_gvr *r,
    const struct kb_informer_handlers *h, void *arg);
/* Start the lazy informer inf if it is not yet, and wait up to timeout_ms
 * for its first list: true once its cache is filled (from a worker). */
bool ctrl_lazy_synced(struct ctrl *c, struct kb_informer *inf,
    int timeout_ms);
/* Start the informers and the workers (they wait for the first lists,
 * and with leader_elect for the Lease). */
int ctrl_start(struct ctrl *c);
/* Stop the workers and the informers (bus calls: from the plugin's stop). */
void ctrl_stop(struct ctrl *c);
/* Free what ctrl_init made (after ctrl_stop, or when start never ran). */
void ctrl_fini(struct ctrl *c);

void ctrl_enqueue(struct ctrl *c, const char *key);
void ctrl_enqueue_obj(struct ctrl *c, const msgpack_object *obj);
/* Enqueue the owner an event on `obj` concerns: the controller named by its
 * controller ownerReference when that is of `kind`, else (unless obj is
 * being deleted) every object in `owners` of its namespace whose selector
 * matches its labels — those that could adopt it. */
void ctrl_enqueue_owners(struct ctrl *c, struct kb_informer *owners,
    const char *kind, const msgpack_object *obj);
void ctrl_requeue_after(struct ctrl *c, const char *key, int64_t ms);

/* Split "ns/name" into the two buffers (ns "" when cluster-scoped). */
bool ctrl_split_key(const char *key, char *ns, size_t nslen, char *name,
    size_t namelen);

/* --- objects ------------------------------------------------------------------ */

/* The ownerReference with controller: true, or NULL. */
const msgpack_object *ctrl_controller_ref(const msgpack_object *obj);
/* True when obj has an ownerReference with that uid (controller or not). */
bool ctrl_has_owner_uid(const msgpack_object *obj, const char *uid,
    size_t uidlen);
bool ctrl_str_eq(const msgpack_object *o, const char *path,
    const msgpack_object *other, const char *other_path);
bool ctrl_deleting(const msgpack_object *obj);
bool ctrl_has_finalizer(const msgpack_object *obj, const char *path,
    const char *f);

/* Does a LabelSelector ({matchLabels, matchExpressions}) select these
 * labels (a map or NULL)? An empty selector selects everything; a NULL
 * selector nothing (as Kubernetes' LabelSelectorAsSelector). */
bool ctrl_selector_matches(const msgpack_object *sel,
    const msgpack_object *labels);
bool ctrl_selector_empty(const msgpack_object *sel);

/* RFC 3339 "2026-11-26T14:00:00Z" <-> Unix ms; -1 when unparseable. */
int64_t ctrl_parse_time(const msgpack_object *o, const char *path);
void ctrl_format_time(int64_t ms, char *buf, size_t len);
int64_t ctrl_now_ms(void);

/* Pod helpers. */
bool ctrl_pod_active(const msgpack_object *pod);
bool ctrl_pod_ready(const msgpack_object *pod);
/* When the pod became Ready (ms), -1 when unknown. */
int64_t ctrl_pod_ready_since(const msgpack_object *pod);
bool ctrl_pod_available(const msgpack_object *pod, int64_t min_ready_s,
    int64_t now_ms);

/* A copy of obj with the value at a dotted path of map keys replaced by
 * `raw` (one msgpack value, rawlen bytes), creating maps on the way, or
 * removed when raw is NULL. NULL on no memory. */
kb_body *ctrl_obj_set(const msgpack_object *obj, const char *path,
    const void *raw, size_t rawlen);
/* The same with a value packed by kb_mp_pack's format. */
kb_body *ctrl_obj_setf(const msgpack_object *obj, const char *path,
    const char *fmt, ...);
/* A copy of the string array at path without `s` (packed into sb). */
void ctrl_pack_strs_without(msgpack_packer *pk, const msgpack_object *arr,
    const char *s);

/* --- claiming (owner.c) -------------------------------------------------------- */

/* Names of the objects in namespace ns that `owner` controls or that
 * nobody controls: what it may own once selectors are checked. */
struct ctrl_objs {
	char **names;
	size_t n, cap;
};
void ctrl_candidates(struct kb_informer *inf, const char *ns,
    const msgpack_object *owner, struct ctrl_objs *out);
void ctrl_objs_free(struct ctrl_objs *v);
/* {apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true} */
void ctrl_pack_owner_ref(msgpack_packer *pk, const msgpack_object *owner,
    const char *api_version, const char *kind);
/* Whether owner (of resource r) may adopt: asked of the API server, not
 * the cache, at most once per reconcile (*asked starts at 1), as
 * Kubernetes' RecheckDeletionTimestamp. A cached owner can be older than
 * the objects it would adopt: a Deployment deleted with
 * propagationPolicy=Orphan whose controller still sees it alive would take
 * back the ReplicaSets the garbage collector has just orphaned, and those
 * would go with it. 0: the live owner is the same object and not being
 * deleted; KB_ENOTFOUND: gone, replaced or being deleted; else the GET's
 * error. */
int ctrl_recheck_owner(kb_ctx *ctx, const struct kb_gvr *r,
    const msgpack_object *owner, int *asked);
/* Update obj with owner's reference added (adopt) or removed (release);
 * *out (may be NULL) gets the reply. */
int ctrl_set_owner(kb_ctx *ctx, const struct kb_gvr *r,
    const msgpack_object *owner, const char *api_version, const char *kind,
    const msgpack_object *obj, bool adopt, kb_msg **out);

/* Set (raw: one msgpack value) or remove (raw NULL) the field at a JSON
 * pointer ("/metadata/finalizers") of obj with a JSON patch that first
 * tests obj's uid and resourceVersion: never applied to a newer version
 * or to a new object of the same name (as an update of a deleted object
 * could be). KB_ECONFLICT when obj is stale, KB_ENOTFOUND when gone. */
int ctrl_patch_guarded(kb_ctx *ctx, const struct kb_gvr *r,
    const msgpack_object *obj, const char *pointer, const void *raw,
    size_t rawlen, kb_msg **out);

/* {propagationPolicy, preconditions.uid} delete options. */
kb_body *ctrl_delete_opts(const char *policy, const char *uid, size_t uidlen);

#endif
