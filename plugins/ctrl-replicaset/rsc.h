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
struct rsc_pod {
	kb_body *b;
	const msgpack_object *o;
};
/* Sort so that the pods to delete first come first: unscheduled, pending,
 * not ready, ready for less time, restarted more, newest. */
void rsc_rank_for_deletion(struct rsc_pod *pods, size_t n);

#endif
