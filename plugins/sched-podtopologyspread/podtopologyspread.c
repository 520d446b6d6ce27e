/* plugins/sched-podtopologyspread — kube-scheduler's PodTopologySpread:
 * the pod's topologySpreadConstraints.
 *
 * DoNotSchedule constraints filter. PreFilter counts, per constraint and
 * per domain (a value of topologyKey), the pods matching the constraint's
 * selector in the pod's namespace (not terminating) on the eligible nodes:
 * nodes that carry every constraint's topologyKey and, per
 * nodeAffinityPolicy (default Honor) and nodeTaintsPolicy (default
 * Ignore), fit the pod's node affinity and tolerate the node's taints.
 * Filter then rejects a node when placing the pod there would make
 *     count(domain) + selfMatch - min over domains > maxSkew
 * (the min is 0 while there are fewer domains than minDomains); a node
 * without the topologyKey is unresolvable.
 *
 * ScheduleAnyway constraints score: PreScore counts the domains of the
 * feasible nodes (every node is counted for them, the hostname key
 * per node), Score sums count * log(domains + 2) + maxSkew - 1 over the
 * constraints, NormalizeScore turns fewer into better
 * (100 * (max + min - s) / max); nodes without every key score 0.
 *
 * No args. Kubernetes' default system constraints (applied from the
 * Services and ReplicaSets selecting a pod that has none) are not
 * applied: the scheduler does not watch Services. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>
#include <kubus/strmap.h>

#define HOSTNAME "kubernetes.io/hostname"
#define PTS_PF "sched-podtopologyspread/prefilter"
#define PTS_PS "sched-podtopologyspread/prescore"

/* Counts live in maps as count + 1 cast to a pointer (NULL: absent). */
static int64_t get_count(const struct kb_strmap *m, const char *v, bool *found)
{
	void *p = kb_strmap_get(m, v);
	*found = p != NULL;
	return p ? (int64_t)(intptr_t)p - 1 : 0;
}

static int add_count(struct kb_strmap *m, const char *v, int64_t d)
{
	bool found;
	int64_t c = get_count(m, v, &found);
	return kb_strmap_put(m, v, (void *)(intptr_t)(c + d + 1), NULL);
}

struct tpc {
	const struct kb_sched_spread *c;
	struct kb_strmap counts; /* domain -> matching pods */
	int64_t min;             /* over domains (0 when too few domains) */
	bool self;               /* the selector matches the pod itself */
	double weight;           /* scoring: log(domains + 2) */
};

struct state {
	struct tpc *v;
	size_t n;
	/* scoring: nodes left out (without every key) by name */
	struct kb_strmap ignored;
};

static void state_free(void *p)
{
	struct state *s = p;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		kb_strmap_clear(&s->v[i].counts, NULL);
	kb_strmap_clear(&s->ignored, NULL);
	free(s->v);
	free(s);
}

static bool has_keys(const struct kb_sched_pod *pod,
    const struct kb_sched_node *node, bool hard)
{
	for (size_t i = 0; i < pod->nspread; i++) {
		if (pod->spread[i].do_not_schedule != hard)
			continue;
		if (!kb_sched_label(node->labels, node->nlabels,
			pod->spread[i].topology_key))
			return false;
	}
	return true;
}

static bool untolerated_taint(const struct kb_sched_pod *pod,
    const struct kb_sched_node *node)
{
	for (size_t i = 0; i < node->ntaints; i++) {
		const struct kb_sched_taint *t = &node->taints[i];
		if ((t->effect == KB_EFFECT_NO_SCHEDULE ||
			t->effect == KB_EFFECT_NO_EXECUTE) &&
		    !kb_sched_pod_tolerates(pod, t))
			return true;
	}
	return false;
}

/* Does the node count for this constraint (its policies)? */
static bool eligible(const struct kb_sched_pod *pod,
    const struct kb_sched_spread *c, const struct kb_sched_node *node)
{
	if (c->honor_node_affinity &&
	    !kb_sched_node_affinity_matches(pod, node))
		return false;
	if (c->honor_node_taints && untolerated_taint(pod, node))
		return false;
	return true;
}

static int64_t count_matching(const struct kb_sched_pod *pod,
    const struct kb_sched_spread *c, const struct kb_sched_node *node)
{
	int64_t n = 0;
	for (size_t i = 0; i < node->npods; i++) {
		const struct kb_sched_pod *o = node->pods[i];
		if (KB_SCHED_FIELD(o, terminating) && o->terminating)
			continue;
		if (strcmp(o->ns, pod->ns))
			continue;
		n += kb_sched_selector_matches(&c->selector, o->labels,
		    o->nlabels);
	}
	return n;
}

static size_t count_spread(const struct kb_sched_pod *pod, bool hard)
{
	size_t n = 0;
	for (size_t i = 0; i < pod->nspread; i++)
		n += pod->spread[i].do_not_schedule == hard;
	return n;
}

static struct state *state_new(const struct kb_sched_pod *pod, bool hard)
{
	struct state *s = calloc(1, sizeof(*s));
	size_t n = count_spread(pod, hard);
	if (s == NULL || (s->v = calloc(n, sizeof(*s->v))) == NULL) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < pod->nspread; i++) {
		if (pod->spread[i].do_not_schedule != hard)
			continue;
		struct tpc *t = &s->v[s->n++];
		t->c = &pod->spread[i];
		t->self = kb_sched_selector_matches(&t->c->selector,
		    pod->labels, pod->nlabels);
	}
	return s;
}

static int pre_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_status *st)
{
	if (!KB_SCHED_FIELD(pod, nspread) || count_spread(pod, true) == 0)
		return KB_SCHED_SKIP;
	const struct kb_sched_snapshot *snap = kb_sched_cycle_snapshot(cy);
	struct state *s = state_new(pod, true);
	if (s == NULL)
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	int rc = 0;
	for (size_t n = 0; rc == 0 && n < snap->nnodes; n++) {
		const struct kb_sched_node *node = snap->nodes[n];
		if (!has_keys(pod, node, true))
			continue;
		for (size_t i = 0; rc == 0 && i < s->n; i++) {
			struct tpc *t = &s->v[i];
			if (!eligible(pod, t->c, node))
				continue;
			const char *v = kb_sched_label(node->labels,
			    node->nlabels, t->c->topology_key);
			rc = add_count(&t->counts, v,
			    count_matching(pod, t->c, node));
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		struct tpc *t = &s->v[i];
		int64_t min = INT64_MAX;
		for (size_t b = 0; b < t->counts.nb; b++)
			for (struct kb_strent *e = t->counts.b[b]; e;
			     e = e->next)
				if ((int64_t)(intptr_t)e->val - 1 < min)
					min = (int64_t)(intptr_t)e->val - 1;
		if (min == INT64_MAX || t->counts.n < (size_t)t->c->min_domains)
			min = 0;
		t->min = min;
	}
	if (rc) {
		state_free(s);
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	}
	if (kb_sched_cycle_write(cy, PTS_PF, s, state_free))
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	return KB_SCHED_SUCCESS;
}

static int filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	const struct state *s = kb_sched_cycle_read(cy, PTS_PF);
	if (s == NULL)
		return KB_SCHED_SUCCESS;
	for (size_t i = 0; i < s->n; i++) {
		const struct tpc *t = &s->v[i];
		const char *v = kb_sched_label(node->labels, node->nlabels,
		    t->c->topology_key);
		if (v == NULL)
			return kb_sched_reject(st, KB_SCHED_UNRESOLVABLE,
			    "node(s) didn't match pod topology spread constraints (missing required label)");
		bool found;
		int64_t cnt = get_count(&t->counts, v, &found);
		int64_t skew = cnt + (t->self ? 1 : 0) - t->min;
		if (skew > t->c->max_skew)
			return kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
			    "node(s) didn't match pod topology spread constraints");
	}
	return KB_SCHED_SUCCESS;
}

static int pre_score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *const *nodes,
    size_t n, struct kb_sched_status *st)
{
	if (!KB_SCHED_FIELD(pod, nspread) || count_spread(pod, false) == 0)
		return KB_SCHED_SKIP;
	const struct kb_sched_snapshot *snap = kb_sched_cycle_snapshot(cy);
	struct state *s = state_new(pod, false);
	if (s == NULL)
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	int rc = 0;
	size_t counted = 0;
	/* The domains of the feasible nodes. */
	for (size_t k = 0; rc == 0 && k < n; k++) {
		if (!has_keys(pod, nodes[k], false)) {
			rc = kb_strmap_put(&s->ignored, nodes[k]->name,
			    (void *)1, NULL);
			continue;
		}
		counted++;
		for (size_t i = 0; rc == 0 && i < s->n; i++) {
			struct tpc *t = &s->v[i];
			if (!strcmp(t->c->topology_key, HOSTNAME))
				continue;
			rc = kb_strmap_put(&t->counts,
			    kb_sched_label(nodes[k]->labels, nodes[k]->nlabels,
				t->c->topology_key),
			    (void *)1, NULL);
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		struct tpc *t = &s->v[i];
		size_t domains = strcmp(t->c->topology_key, HOSTNAME) ?
		    t->counts.n :
		    counted;
		t->weight = log((double)domains + 2);
	}
	/* Their pods, over every node. */
	for (size_t k = 0; rc == 0 && k < snap->nnodes; k++) {
		const struct kb_sched_node *node = snap->nodes[k];
		if (node->npods == 0 || !has_keys(pod, node, false))
			continue;
		for (size_t i = 0; rc == 0 && i < s->n; i++) {
			struct tpc *t = &s->v[i];
			if (!strcmp(t->c->topology_key, HOSTNAME) ||
			    !eligible(pod, t->c, node))
				continue;
			const char *v = kb_sched_label(node->labels,
			    node->nlabels, t->c->topology_key);
			bool found;
			get_count(&t->counts, v, &found);
			if (found)
				rc = add_count(&t->counts, v,
				    count_matching(pod, t->c, node));
		}
	}
	if (rc) {
		state_free(s);
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	}
	if (kb_sched_cycle_write(cy, PTS_PS, s, state_free))
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	return KB_SCHED_SUCCESS;
}

/* Ignored nodes get -1 here and 0 after normalizing. */
static int score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	const struct state *s = kb_sched_cycle_read(cy, PTS_PS);
	*out = 0;
	if (s == NULL)
		return KB_SCHED_SUCCESS;
	if (kb_strmap_get(&s->ignored, node->name)) {
		*out = -1;
		return KB_SCHED_SUCCESS;
	}
	double sum = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct tpc *t = &s->v[i];
		const char *v = kb_sched_label(node->labels, node->nlabels,
		    t->c->topology_key);
		if (v == NULL)
			continue;
		int64_t cnt;
		if (!strcmp(t->c->topology_key, HOSTNAME)) {
			cnt = count_matching(pod, t->c, node);
		} else {
			bool found;
			cnt = get_count(&t->counts, v, &found);
		}
		sum += (double)cnt * t->weight + (double)(t->c->max_skew - 1);
	}
	*out = (int64_t)llround(sum);
	return KB_SCHED_SUCCESS;
}

static int normalize(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_node_score *sc, size_t n,
    struct kb_sched_status *st)
{
	if (kb_sched_cycle_read(cy, PTS_PS) == NULL)
		return KB_SCHED_SUCCESS;
	int64_t min = INT64_MAX, max = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		if (sc[i].score < 0)
			continue;
		if (sc[i].score < min)
			min = sc[i].score;
		if (sc[i].score > max)
			max = sc[i].score;
	}
	for (size_t i = 0; i < n; i++) {
		if (sc[i].score < 0)
			sc[i].score = 0;
		else if (max == 0)
			sc[i].score = KB_SCHED_MAX_SCORE;
		else
			sc[i].score = KB_SCHED_MAX_SCORE *
			    (max + min - sc[i].score) / max;
	}
	return KB_SCHED_SUCCESS;
}

/* Without constraints Filter and Score look at no other node (the
 * equivalence cache may reuse them); with some, they count pods across
 * domains. */
static bool node_local(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod)
{
	return !KB_SCHED_FIELD(pod, nspread) || pod->nspread == 0;
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
		.name = "sched-podtopologyspread",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description = "PodTopologySpread: topologySpreadConstraints "
			       "(maxSkew, minDomains, DoNotSchedule, "
			       "ScheduleAnyway)",
		.ops = &ops,
	};
	return &p;
}
