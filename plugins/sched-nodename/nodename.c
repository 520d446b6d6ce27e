/* plugins/sched-nodename — kube-scheduler's NodeName: a pod that names a
 * node (spec.nodeName) fits only that node. */
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>

/* Nothing to check for a pod naming no node (every pod the queue holds,
 * in practice): skip Filter on every node. */
static int pre_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_status *st)
{
	return pod->node_name[0] ? KB_SCHED_SUCCESS : KB_SCHED_SKIP;
}

static int filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	if (pod->node_name[0] && strcmp(pod->node_name, node->name))
		return kb_sched_reject(st, KB_SCHED_UNRESOLVABLE,
		    "node(s) didn't match the requested node name");
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
	.node_local = node_local,
};

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "sched-nodename",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description = "pods that name a node fit only that node",
		.ops = &ops,
	};
	return &p;
}
