/* plugins/sched-tainttoleration — kube-scheduler's TaintToleration: a node
 * with a NoSchedule or NoExecute taint the pod does not tolerate is
 * filtered out; among the rest, nodes with fewer untolerated
 * PreferNoSchedule taints score higher. */
#include <kubus/kubus.h>
#include <kubus/sched.h>

static bool no_node_has(const struct kb_sched_cycle *cy, int bit)
{
	const struct kb_sched_snapshot *snap = kb_sched_cycle_snapshot(cy);
	return snap && KB_SCHED_FIELD(snap, cols) && snap->cols &&
	    snap->cols->nflag[bit] == 0;
}

/* Nothing to filter when no node has a NoSchedule/NoExecute taint. */
static int pre_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_status *st)
{
	return no_node_has(cy, 1) ? KB_SCHED_SKIP : KB_SCHED_SUCCESS;
}

/* No PreferNoSchedule taint anywhere: every node would score 0, then 100
 * after NormalizeScore, the same for all: skip. */
static int pre_score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *const *nodes,
    size_t n, struct kb_sched_status *st)
{
	return no_node_has(cy, 2) ? KB_SCHED_SKIP : KB_SCHED_SUCCESS;
}

static int filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	for (size_t i = 0; i < node->ntaints; i++) {
		const struct kb_sched_taint *t = &node->taints[i];
		if (t->effect != KB_EFFECT_NO_SCHEDULE &&
		    t->effect != KB_EFFECT_NO_EXECUTE)
			continue;
		if (!kb_sched_pod_tolerates(pod, t))
			return kb_sched_reject(st, KB_SCHED_UNRESOLVABLE,
			    "node(s) had untolerated taint {%s: %s}", t->key,
			    t->value);
	}
	return KB_SCHED_SUCCESS;
}

/* Only tolerations with no effect or PreferNoSchedule count here. */
static int score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	int64_t n = 0;
	for (size_t i = 0; i < node->ntaints; i++) {
		const struct kb_sched_taint *t = &node->taints[i];
		if (t->effect != KB_EFFECT_PREFER_NO_SCHEDULE)
			continue;
		bool ok = false;
		for (size_t j = 0; !ok && j < pod->ntolerations; j++) {
			const struct kb_sched_toleration *tol =
			    &pod->tolerations[j];
			if (tol->effect == KB_EFFECT_ALL ||
			    tol->effect == KB_EFFECT_PREFER_NO_SCHEDULE)
				ok = kb_sched_tolerates(tol, t);
		}
		n += !ok;
	}
	*out = n;
	return KB_SCHED_SUCCESS;
}

/* Batch slots: only tainted nodes need a look. */
static int filter_nodes(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_columns *c,
    const uint32_t *rows, size_t n, uint64_t *out, struct kb_sched_status *st)
{
	for (size_t i = 0; i < n; i++)
		out[i] = c->flags[rows[i]] & KB_SCHED_NODE_HARD_TAINTS ?
		    KB_SCHED_ASK_NODE :
		    0;
	return KB_SCHED_SUCCESS;
}

static int score_nodes(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_columns *c,
    const uint32_t *rows, size_t n, int64_t *out, struct kb_sched_status *st)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = 0;
		if (c->flags[rows[i]] & KB_SCHED_NODE_PREFER_TAINTS)
			score(state, cy, pod, c->nodes[rows[i]], &out[i], st);
	}
	return KB_SCHED_SUCCESS;
}

/* DefaultNormalizeScore(MaxNodeScore, reverse=true). */
static int normalize(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_node_score *s, size_t n,
    struct kb_sched_status *st)
{
	int64_t max = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i].score > max)
			max = s[i].score;
	for (size_t i = 0; i < n; i++)
		s[i].score = max == 0 ?
		    KB_SCHED_MAX_SCORE :
		    KB_SCHED_MAX_SCORE - KB_SCHED_MAX_SCORE * s[i].score / max;
	return KB_SCHED_SUCCESS;
}

/* Filter and Score read only the pod and the node (the equivalence
 * cache may reuse them). */
static bool node_local(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod)
{
	return true;
}

static const struct kb_sched_policy_ops ops = {
	.size = sizeof(struct kb_sched_policy_ops),
	.pre_filter = pre_filter,
	.filter = filter,
	.pre_score = pre_score,
	.score = score,
	.normalize_score = normalize,
	.filter_nodes = filter_nodes,
	.score_nodes = score_nodes,
	.node_local = node_local,
};

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "sched-tainttoleration",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description =
		    "taints and tolerations (NoSchedule, NoExecute, PreferNoSchedule)",
		.ops = &ops,
	};
	return &p;
}
