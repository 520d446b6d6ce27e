/* plugins/ctrl-nodelifecycle/nlc.h — the node lifecycle controller's state
 * and what its files share. Keys are node names. */
#ifndef KUBUS_CTRL_NODELIFECYCLE_H
#define KUBUS_CTRL_NODELIFECYCLE_H

#include "ctrl.h"

#define NLC_LEASE_NS "kube-node-lease"
#define NLC_NOT_READY "node.kubernetes.io/not-ready"
#define NLC_UNREACHABLE "node.kubernetes.io/unreachable"

struct nlc_cfg {
	struct ctrl_conf ctl;
	int64_t grace_ms;
	int64_t monitor_ms;
	double eviction_rate;
	bool mark_pods_not_ready;
};

/* What the controller last saw of a node's heartbeats, and when (its own
 * clock, as Kubernetes' probeTimestamp: a skewed node clock does not
 * matter). */
struct nlc_node {
	char *name;
	char *renew; /* the Lease's spec.renewTime */
	char *beat;  /* the Ready condition's lastHeartbeatTime */
	int64_t probe_ms;
	struct nlc_node *next;
};

struct nlc {
	struct ctrl c;
	struct nlc_cfg cfg;
	struct kb_informer *nodes, *leases, *pods;
	pthread_mutex_t mu; /* health records and the eviction bucket */
	struct nlc_node *health;
	double tokens;
	int64_t tokens_at;
	bool disruption_logged;
};

/* Reconcile one node (a ctrl_sync_fn). */
int nlc_sync(void *arg, const char *key);

/* health.c: has the node's Lease or status moved within grace_period?
 * Sets *stale and *due_ms (ms until it would go stale, when not). */
void nlc_probe(struct nlc *n, const char *name, const msgpack_object *node,
    bool *stale, int64_t *due_ms);
void nlc_forget(struct nlc *n, const char *name);
void nlc_health_free(struct nlc *n);
/* Mark the kubelet's conditions Unknown; *node is replaced by the updated
 * object. */
int nlc_mark_unknown(struct nlc *n, kb_body **node);
/* The Ready condition's status ("True", "False", "Unknown"; "" when
 * there is none). */
const char *nlc_ready_status(const msgpack_object *node);

/* taint.c: the taints of node conditions (NoSchedule), and not-ready /
 * unreachable NoExecute, written when they differ; *node is replaced by
 * the updated object. */
int nlc_sync_taints(struct nlc *n, kb_body **node, int64_t *due_ms);
/* Does one toleration (a map) tolerate one taint (a map)? */
bool nlc_tolerates(const msgpack_object *tol, const msgpack_object *taint);

/* evict.c: pods on a node with NoExecute taints they do not tolerate (or
 * tolerate for less time than has passed) are deleted; *due_ms gets the
 * next eviction. With Ready not True, pods are marked not Ready. */
int nlc_evict(struct nlc *n, const msgpack_object *node, int64_t *due_ms);
int nlc_pods_not_ready(struct nlc *n, const msgpack_object *node);

#endif
