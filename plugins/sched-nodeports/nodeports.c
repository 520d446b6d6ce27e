/* plugins/sched-nodeports — kube-scheduler's NodePorts: a pod asking for
 * host ports fits only nodes where no pod already holds the same port and
 * protocol on an overlapping address (0.0.0.0, written "", overlaps all). */
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>

static int pre_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_status *st)
{
	return pod->nhost_ports ? KB_SCHED_SUCCESS : KB_SCHED_SKIP;
}

static bool conflict(const struct kb_sched_host_port *a,
    const struct kb_sched_host_port *b)
{
	if (a->port != b->port || strcmp(a->protocol, b->protocol))
		return false;
	return !a->host_ip[0] || !b->host_ip[0] ||
	    !strcmp(a->host_ip, b->host_ip);
}

static int filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	for (size_t i = 0; i < node->npods; i++) {
		const struct kb_sched_pod *other = node->pods[i];
		for (size_t j = 0; j < other->nhost_ports; j++)
			for (size_t k = 0; k < pod->nhost_ports; k++)
				if (conflict(&other->host_ports[j],
					&pod->host_ports[k]))
					return kb_sched_reject(st,
					    KB_SCHED_UNSCHEDULABLE,
					    "node(s) didn't have free ports for the "
					    "requested pod ports");
	}
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
		.name = "sched-nodeports",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description =
		    "host ports: one pod per port, protocol and address",
		.ops = &ops,
	};
	return &p;
}
