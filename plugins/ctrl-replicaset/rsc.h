/* plugins/ctrl-replicaset/rsc.h — the ReplicaSet controller's state and
 * what its files share. */
#ifndef KUBUS_CTRL_RS_H
#define KUBUS_CTRL_RS_H

#include "../ctrl-common/ctrl.h"

struct rsc_cfg {
	struct ctrl_conf ctl;
	int64_t burst;
	int64_t concurrency;
	int64_t expect_timeout_ms;
};

struct expect;

struct rsc {
	struct ctrl c;
	struct rsc_cfg cfg;
	struct kb_informer *rs, *pods;
	pthread_mutex_t mu; /* expectations */
	struct expect *exps;
};

/* Reconcile the ReplicaSet "ns/name" (a ctrl_sync_fn). */
int rsc_sync(void *arg, const char *key);
/* The pods informer's index: "u/<uid>" for a pod with a controller (the
 * controller's uid), "o/<namespace>" for an orphan. A reconcile reads the
 * ReplicaSet's own pods and its namespace's orphans, not every pod. */
bool rsc_pod_index(const msgpack_object *pod, char *buf, size_t len);

/* --- expectations: pods created or deleted that the cache has not shown yet.
 * Until it has (or timeout), the ReplicaSet is not managed again, so a stale
 * cache never makes it create or delete twice. */
void rsc_expect(struct rsc *r, const char *key, const char *name, bool present);
bool rsc_expectations_met(struct rsc *r, const char *key, const char *ns);
void rsc_expect_forget(struct rsc *r, const char *key);
void rsc_expect_free_all(struct rsc *r);

/* --- ranking pods for deletion ---------------------------------------------------- */
/* What the order compares of a pod, read once per version of it (part of
 * its view): ready is its Ready condition being True, ready_since that
 * condition's lastTransitionTime (ms; -1 unparseable, 0 when not ready). */
struct rsc_rank {
	bool assigned, ready;
	int phase;
	int64_t ready_since, restarts, created;
	const char *rv;
	size_t rvlen;
};
void rsc_rank_read(const msgpack_object *pod, struct rsc_rank *k);

struct rsc_pod {
	kb_body *b;
	const msgpack_object *o;
	struct rsc_rank k; /* of o */
};
/* Sort so that the pods to delete first come first: unscheduled, pending,
 * not ready, ready for less time, restarted more, newest. */
void rsc_rank_for_deletion(struct rsc_pod *pods, size_t n);

/* --- a pod's view (podview.c) -------------------------------------------------------
 * What a reconcile reads of each pod, made by the pods informer once per
 * version of the pod (kb_informer_set_view) rather than looked up in its
 * maps at every pass over a ReplicaSet's pods. Pointers point into the
 * pod: valid while its body is (during an informer callback, or while the
 * reference kb_informer_get_view returned is held). */
struct rsc_podv {
	const msgpack_object *md, *labels;
	/* the first ownerReference with controller: true, or NULL */
	const msgpack_object *ctl_ref;
	/* NULL unless a string: metadata.namespace, metadata.name, the
	 * controller reference's uid */
	const char *ns, *name, *ctl_uid;
	size_t nslen, namelen, ctl_uidlen;
	bool deleting, terminal;
	struct rsc_rank rank;
};
/* Fill a struct rsc_podv (`view`) from a pod: the informer's view maker,
 * and for pods from elsewhere (a reply). */
void rsc_pod_view(const msgpack_object *pod, void *view);

#endif
