/* plugins/ctrl-deployment/dc.h — the Deployment controller's state and
 * what its files share. */
#ifndef KUBUS_CTRL_DEPLOY_H
#define KUBUS_CTRL_DEPLOY_H

#include "ctrl.h"

#define DC_REVISION "deployment.kubernetes.io/revision"
#define DC_DESIRED "deployment.kubernetes.io/desired-replicas"
#define DC_MAX "deployment.kubernetes.io/max-replicas"
#define DC_HASH_LABEL "pod-template-hash"

struct dc_cfg {
	struct ctrl_conf ctl;
};

struct dc {
	struct ctrl c;
	struct dc_cfg cfg;
	struct kb_informer *deps, *rss;
};

/* One ReplicaSet of a Deployment, with the replicas it is being scaled
 * to in this reconcile. */
struct dc_rs {
	kb_body *b;
	const msgpack_object *o;
	int64_t replicas; /* spec.replicas, as scaled so far */
	int64_t revision;
	int64_t created; /* creationTimestamp, ms */
};

struct dc_set {
	struct dc_rs *v;
	size_t n;
	struct dc_rs *cur; /* the ReplicaSet of the current template, or NULL */
};

/* The reconcile of "ns/name" (a ctrl_sync_fn). */
int dc_sync(void *arg, const char *key);

/* claim.c: the Deployment's ReplicaSets, adopting and releasing by
 * selector; free with dc_set_free. */
int dc_claim(struct dc *d, const msgpack_object *dep, struct dc_set *set);
void dc_set_free(struct dc_set *set);

/* hash.c: pod-template-hash of a template (the label itself left out),
 * as Kubernetes' safe-encoded FNV-32a; into buf (>= 11 bytes). */
void dc_template_hash(const msgpack_object *tmpl, int64_t collisions, char *buf,
    size_t len);

/* rollout.c */
int dc_int_or_percent(const msgpack_object *v, int64_t total, bool round_up,
    int64_t def_percent);
void dc_max_surge_unavailable(const msgpack_object *dep, int64_t replicas,
    int64_t *surge, int64_t *unavail);
/* The ScalingReplicaSet event of a ReplicaSet sized from `from` to `to`. */
void dc_scaled_event(struct dc *d, const msgpack_object *dep,
    const msgpack_object *rs, int64_t from, int64_t to);
/* Scale one ReplicaSet (spec.replicas and the replica annotations). */
int dc_scale(struct dc *d, const msgpack_object *dep, struct dc_rs *rs,
    int64_t to);
int dc_rollout(struct dc *d, const msgpack_object *dep, struct dc_set *set);
/* A ReplicaSet with replicas whose desired-replicas annotation is not the
 * Deployment's replicas: the Deployment was scaled. */
bool dc_is_scaling_event(const msgpack_object *dep, const struct dc_set *set);
/* Scale without rolling out (a scaling event, or paused): spread the
 * change over the active ReplicaSets in proportion to their sizes. */
int dc_scale_proportional(struct dc *d, const msgpack_object *dep,
    struct dc_set *set);
int dc_cleanup(struct dc *d, const msgpack_object *dep, struct dc_set *set);

/* status.c; *requeue_ms set when a deadline needs a later look. */
int dc_status(struct dc *d, const msgpack_object *dep, struct dc_set *set,
    int64_t *requeue_ms);

#endif
