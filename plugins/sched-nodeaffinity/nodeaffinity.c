/* plugins/sched-nodeaffinity — kube-scheduler's NodeAffinity: the pod's
 * nodeSelector and required node affinity filter nodes (every operator:
 * In, NotIn, Exists, DoesNotExist, Gt, Lt, and matchFields on
 * metadata.name); preferred terms score a node by the sum of the weights
 * of those it matches, normalized to 0..100. */
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>

static int pre_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_status *st)
{
	return pod->nnode_selector || pod->has_required ? KB_SCHED_SUCCESS :
							  KB_SCHED_SKIP;
}

static bool selector_matches(const struct kb_sched_pod *pod,
    const struct kb_sched_node *node)
{
	for (size_t i = 0; i < pod->nnode_selector; i++) {
		const char *v = kb_sched_label(node->labels, node->nlabels,
		    pod->node_selector[i].key);
		if (v == NULL || strcmp(v, pod->node_selector[i].value))
			return false;
	}
	if (!pod->has_required)
		return true;
	for (size_t i = 0; i < pod->nrequired; i++)
		if (kb_sched_term_matches(&pod->required[i], node))
			return true;
	return false;
}

static int filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	if (!selector_matches(pod, node))
		return kb_sched_reject(st, KB_SCHED_UNRESOLVABLE,
		    "node(s) didn't match Pod's node affinity/selector");
	return KB_SCHED_SUCCESS;
}

static int pre_score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *const *nodes,
    size_t n, struct kb_sched_status *st)
{
	return pod->npreferred ? KB_SCHED_SUCCESS : KB_SCHED_SKIP;
}

static int score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	int64_t sum = 0;
	for (size_t i = 0; i < pod->npreferred; i++)
		if (pod->preferred[i].weight &&
		    kb_sched_term_matches(&pod->preferred[i].term, node))
			sum += pod->preferred[i].weight;
	*out = sum;
	return KB_SCHED_SUCCESS;
}

/* DefaultNormalizeScore(MaxNodeScore, reverse=false). */
static int normalize(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_node_score *s, size_t n,
    struct kb_sched_status *st)
{
	int64_t max = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i].score > max)
			max = s[i].score;
	for (size_t i = 0; i < n; i++)
		s[i].score = max ? KB_SCHED_MAX_SCORE * s[i].score / max : 0;
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
	.node_local = node_local,
};

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "sched-nodeaffinity",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description =
		    "nodeSelector and required/preferred node affinity",
		.ops = &ops,
	};
	return &p;
}
