/* plugins/sched-nodeunschedulable — kube-scheduler's NodeUnschedulable:
 * a cordoned node (spec.unschedulable) takes only pods that tolerate the
 * node.kubernetes.io/unschedulable:NoSchedule taint. */
#include <kubus/kubus.h>
#include <kubus/sched.h>

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

static const struct kb_sched_policy_ops ops = {
	.size = sizeof(struct kb_sched_policy_ops),
	.filter = filter,
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
