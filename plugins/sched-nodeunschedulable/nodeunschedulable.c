/* plugins/sched-nodeunschedulable — kube-scheduler's NodeUnschedulable:
 * a cordoned node (spec.unschedulable) takes only pods that tolerate the
 * node.kubernetes.io/unschedulable:NoSchedule taint. */
#include <kubus/kubus.h>
#include <kubus/sched.h>

/* Nothing to check when no node of the snapshot is cordoned (known from
 * its columns). */
static int pre_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_status *st)
{
	const struct kb_sched_snapshot *snap = kb_sched_cycle_snapshot(cy);
	if (snap && KB_SCHED_FIELD(snap, cols) && snap->cols &&
	    snap->cols->nflag[0] == 0)
		return KB_SCHED_SKIP;
	return KB_SCHED_SUCCESS;
}

static int filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	static const struct kb_sched_taint cordon = {
		.key = "node.kubernetes.io/unschedulable",
		.value = "",
		.effect = KB_EFFECT_NO_SCHEDULE,
	};
	if (node->unschedulable && !kb_sched_pod_tolerates(pod, &cordon))
		return kb_sched_reject(st, KB_SCHED_UNRESOLVABLE,
		    "node(s) were unschedulable");
	return KB_SCHED_SUCCESS;
}

/* Only cordoned nodes need a look. */
static int filter_nodes(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_columns *c,
    const uint32_t *rows, size_t n, uint64_t *out, struct kb_sched_status *st)
{
	for (size_t i = 0; i < n; i++)
		out[i] = c->flags[rows[i]] & KB_SCHED_NODE_UNSCHEDULABLE ?
		    KB_SCHED_ASK_NODE :
		    0;
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
	.filter_nodes = filter_nodes,
	.node_local = node_local,
};

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "sched-nodeunschedulable",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description = "cordoned nodes take only pods that tolerate it",
		.ops = &ops,
	};
	return &p;
}
