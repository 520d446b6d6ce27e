/* plugins/sched-interpodaffinity — kube-scheduler's InterPodAffinity:
 * podAffinity and podAntiAffinity, required and preferred, both ways.
 *
 * PreFilter counts, per topology pair (topologyKey, value of the node):
 *   - existing pods whose required anti-affinity terms select the incoming
 *     pod (only nodes with such pods are looked at: node->nanti_pods);
 *   - existing pods matching all the incoming pod's required affinity
 *     terms, and those matching each of its required anti-affinity terms.
 * Filter then rejects a node
 *   - lacking a required affinity term's topologyKey, or whose pair has no
 *     matching pod — unless no pod anywhere matches and the pod matches
 *     its own terms (the first of a group): "node(s) didn't match pod
 *     affinity rules" (unresolvable);
 *   - whose pair has a pod the incoming anti-affinity selects: "node(s)
 *     didn't match pod anti-affinity rules";
 *   - whose pair has a pod whose anti-affinity selects the incoming pod:
 *     "node(s) didn't satisfy existing pods anti-affinity rules".
 * PreScore sums weights per topology pair: the incoming pod's preferred
 * (anti-)affinity terms over existing pods (+/- weight), existing pods'
 * required affinity terms selecting it (+hardPodAffinityWeight) and their
 * preferred (anti-)affinity terms (+/- weight); Score adds the pairs of the
 * node, NormalizeScore maps min..max onto 0..100.
 *
 * args (InterPodAffinityArgs):
 *     hardPodAffinityWeight: 1              # 0..100
 *     ignorePreferredTermsOfExistingPods: false
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>
#include <kubus/strmap.h>

#define IPA_PF "sched-interpodaffinity/prefilter"
#define IPA_PS "sched-interpodaffinity/prescore"

struct policy {
	int64_t hard_weight;
	bool ignore_existing_preferred;
};

static const struct kb_opt opts[] = {
	KB_OPT_INT("hardPodAffinityWeight", struct policy, hard_weight, "1", 0,
	    100, "score for existing pods' required affinity matching the pod"),
	KB_OPT_BOOL("ignorePreferredTermsOfExistingPods", struct policy,
	    ignore_existing_preferred, "false",
	    "score only the incoming pod's preferred terms"),
	KB_OPT_END,
};

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct policy *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, p, kb_instance(ctx), err, sizeof(err))) {
		free(p);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	*state = p;
	return 0;
}

static void fini(void *state)
{
	free(state);
}

/* "key\x01value" of a node for a topology key; false when the node lacks
 * it. */
static bool pair(char *buf, size_t len, const struct kb_sched_node *node,
    const char *key)
{
	const char *v = kb_sched_label(node->labels, node->nlabels, key);
	if (v == NULL)
		return false;
	snprintf(buf, len, "%s\x01%s", key, v);
	return true;
}

/* Counts: count cast to a pointer (never 0 when present). */
static int bump(struct kb_strmap *m, const char *k)
{
	intptr_t c = (intptr_t)kb_strmap_get(m, k);
	return kb_strmap_put(m, k, (void *)(c + 1), NULL);
}

static int64_t count(const struct kb_strmap *m, const char *k)
{
	return (int64_t)(intptr_t)kb_strmap_get(m, k);
}

struct pf {
	struct kb_strmap existing_anti; /* pairs with pods anti to ours */
	struct kb_strmap affinity;      /* pairs with pods we want */
	struct kb_strmap anti;          /* pairs with pods we avoid */
	char **keys;                    /* topology keys in existing_anti */
	size_t nkeys;
};

static void pf_free(void *v)
{
	struct pf *s = v;
	kb_strmap_clear(&s->existing_anti, NULL);
	kb_strmap_clear(&s->affinity, NULL);
	kb_strmap_clear(&s->anti, NULL);
	for (size_t i = 0; i < s->nkeys; i++)
		free(s->keys[i]);
	free(s->keys);
	free(s);
}

static int add_key(struct pf *s, const char *key)
{
	for (size_t i = 0; i < s->nkeys; i++)
		if (!strcmp(s->keys[i], key))
			return 0;
	char **v = realloc(s->keys, (s->nkeys + 1) * sizeof(*v));
	if (v == NULL)
		return KB_ENOMEM;
	s->keys = v;
	if ((v[s->nkeys] = strdup(key)) == NULL)
		return KB_ENOMEM;
	s->nkeys++;
	return 0;
}

static bool has_pod_affinity(const struct kb_sched_pod *p)
{
	return KB_SCHED_FIELD(p, npref_anti_affinity) &&
	    (p->naffinity || p->nanti_affinity || p->npref_affinity ||
		p->npref_anti_affinity);
}

static bool matches_all(const struct kb_sched_pod *pod,
    const struct kb_sched_pod *other)
{
	for (size_t i = 0; i < pod->naffinity; i++)
		if (!kb_sched_term_selects(&pod->affinity[i], pod->ns, other))
			return false;
	return pod->naffinity > 0;
}

static int pre_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_status *st)
{
	const struct kb_sched_snapshot *snap = kb_sched_cycle_snapshot(cy);
	bool mine = KB_SCHED_FIELD(pod, nanti_affinity) &&
	    (pod->naffinity || pod->nanti_affinity);
	struct pf *s = NULL;
	char k[512];
	int rc = 0;
	if (!mine && KB_SCHED_FIELD(snap, nanti_pods) && snap->totals &&
	    snap->nanti_pods == 0)
		return KB_SCHED_SKIP;
	for (size_t n = 0; rc == 0 && n < snap->nnodes; n++) {
		const struct kb_sched_node *node = snap->nodes[n];
		if (!KB_SCHED_FIELD(node, nanti_pods) || node->npods == 0 ||
		    (!mine && node->nanti_pods == 0))
			continue;
		for (size_t i = 0; rc == 0 && i < node->npods; i++) {
			const struct kb_sched_pod *o = node->pods[i];
			if (!mine &&
			    (!has_pod_affinity(o) || !o->nanti_affinity))
				continue;
			if (s == NULL && (s = calloc(1, sizeof(*s))) == NULL)
				return kb_sched_reject(st, KB_SCHED_ERROR,
				    "out of memory");
			/* Existing pods' required anti-affinity. */
			for (size_t t = 0; has_pod_affinity(o) && rc == 0 &&
			     t < o->nanti_affinity;
			     t++) {
				const struct kb_sched_pod_term *tm =
				    &o->anti_affinity[t];
				if (!kb_sched_term_selects(tm, o->ns, pod) ||
				    !pair(k, sizeof(k), node, tm->topology_key))
					continue;
				rc = bump(&s->existing_anti, k);
				if (rc == 0)
					rc = add_key(s, tm->topology_key);
			}
			if (!mine)
				continue;
			/* The incoming pod's required terms. */
			if (matches_all(pod, o)) {
				for (size_t t = 0;
				     rc == 0 && t < pod->naffinity; t++)
					if (pair(k, sizeof(k), node,
						pod->affinity[t].topology_key))
						rc = bump(&s->affinity, k);
			}
			for (size_t t = 0; rc == 0 && t < pod->nanti_affinity;
			     t++) {
				const struct kb_sched_pod_term *tm =
				    &pod->anti_affinity[t];
				if (kb_sched_term_selects(tm, pod->ns, o) &&
				    pair(k, sizeof(k), node, tm->topology_key))
					rc = bump(&s->anti, k);
			}
		}
	}
	if (rc) {
		pf_free(s);
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	}
	if (!mine && (s == NULL || s->existing_anti.n == 0)) {
		if (s)
			pf_free(s);
		return KB_SCHED_SKIP;
	}
	if (s == NULL && (s = calloc(1, sizeof(*s))) == NULL)
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	if (kb_sched_cycle_write(cy, IPA_PF, s, pf_free))
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	return KB_SCHED_SUCCESS;
}

static int filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	const struct pf *s = kb_sched_cycle_read(cy, IPA_PF);
	char k[512];
	if (s == NULL)
		return KB_SCHED_SUCCESS;
	/* Required affinity. */
	if (KB_SCHED_FIELD(pod, naffinity) && pod->naffinity) {
		bool exist = true;
		for (size_t t = 0; t < pod->naffinity; t++) {
			if (!pair(k, sizeof(k), node,
				pod->affinity[t].topology_key))
				return kb_sched_reject(st,
				    KB_SCHED_UNRESOLVABLE,
				    "node(s) didn't match pod affinity rules");
			if (count(&s->affinity, k) <= 0)
				exist = false;
		}
		if (!exist && !(s->affinity.n == 0 && matches_all(pod, pod)))
			return kb_sched_reject(st, KB_SCHED_UNRESOLVABLE,
			    "node(s) didn't match pod affinity rules");
	}
	/* Required anti-affinity. */
	for (size_t t = 0;
	     KB_SCHED_FIELD(pod, nanti_affinity) && t < pod->nanti_affinity;
	     t++) {
		if (pair(k, sizeof(k), node,
			pod->anti_affinity[t].topology_key) &&
		    count(&s->anti, k) > 0)
			return kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
			    "node(s) didn't match pod anti-affinity rules");
	}
	/* Existing pods' anti-affinity. */
	for (size_t i = 0; s->existing_anti.n && i < s->nkeys; i++)
		if (pair(k, sizeof(k), node, s->keys[i]) &&
		    count(&s->existing_anti, k) > 0)
			return kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
			    "node(s) didn't satisfy existing pods anti-affinity rules");
	return KB_SCHED_SUCCESS;
}

/* --- scoring --------------------------------------------------------------------- */

struct ps {
	struct kb_strmap score; /* pair -> int64_t * */
	char **keys;            /* topology keys in score */
	size_t nkeys;
};

static void ps_free(void *v)
{
	struct ps *s = v;
	kb_strmap_clear(&s->score, free);
	for (size_t i = 0; i < s->nkeys; i++)
		free(s->keys[i]);
	free(s->keys);
	free(s);
}

static int ps_add(struct ps *s, const struct kb_sched_node *node,
    const char *key, int64_t w)
{
	char k[512];
	if (w == 0 || !pair(k, sizeof(k), node, key))
		return 0;
	int64_t *v = kb_strmap_get(&s->score, k);
	if (v == NULL) {
		if ((v = calloc(1, sizeof(*v))) == NULL ||
		    kb_strmap_put(&s->score, k, v, NULL)) {
			free(v);
			return KB_ENOMEM;
		}
		bool known = false;
		for (size_t i = 0; !known && i < s->nkeys; i++)
			known = !strcmp(s->keys[i], key);
		if (!known) {
			char **nk =
			    realloc(s->keys, (s->nkeys + 1) * sizeof(*nk));
			if (nk == NULL)
				return KB_ENOMEM;
			s->keys = nk;
			if ((nk[s->nkeys] = strdup(key)) == NULL)
				return KB_ENOMEM;
			s->nkeys++;
		}
	}
	*v += w;
	return 0;
}

/* Terms of `owner` (in namespace ns) that select `target`, each adding
 * sign * weight (or `fixed` when not 0) to the node's pair. */
static int terms(struct ps *s, const struct kb_sched_pod_term *t, size_t n,
    const char *ns, const struct kb_sched_pod *target,
    const struct kb_sched_node *node, int64_t sign, int64_t fixed)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (kb_sched_term_selects(&t[i], ns, target))
			rc = ps_add(s, node, t[i].topology_key,
			    sign * (fixed ? fixed : t[i].weight));
	return rc;
}

static int pre_score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *const *nodes,
    size_t nfeas, struct kb_sched_status *st)
{
	const struct policy *p = state;
	const struct kb_sched_snapshot *snap = kb_sched_cycle_snapshot(cy);
	bool mine = KB_SCHED_FIELD(pod, npref_anti_affinity) &&
	    (pod->npref_affinity || pod->npref_anti_affinity);
	if (!mine && KB_SCHED_FIELD(snap, naffinity_pods) && snap->totals &&
	    snap->naffinity_pods == 0)
		return KB_SCHED_SKIP;
	struct ps *s = calloc(1, sizeof(*s));
	int rc = 0;
	if (s == NULL)
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	for (size_t n = 0; rc == 0 && n < snap->nnodes; n++) {
		const struct kb_sched_node *node = snap->nodes[n];
		if (!KB_SCHED_FIELD(node, naffinity_pods) || node->npods == 0 ||
		    node->nlabels == 0 || (!mine && node->naffinity_pods == 0))
			continue;
		for (size_t i = 0; rc == 0 && i < node->npods; i++) {
			const struct kb_sched_pod *o = node->pods[i];
			if (mine)
				rc = terms(s, pod->pref_affinity,
					 pod->npref_affinity, pod->ns, o, node,
					 1, 0) ||
				    terms(s, pod->pref_anti_affinity,
					pod->npref_anti_affinity, pod->ns, o,
					node, -1, 0);
			if (rc || !has_pod_affinity(o))
				continue;
			if (p->hard_weight > 0)
				rc = terms(s, o->affinity, o->naffinity, o->ns,
				    pod, node, 1, p->hard_weight);
			if (rc == 0 && !p->ignore_existing_preferred)
				rc = terms(s, o->pref_affinity,
					 o->npref_affinity, o->ns, pod, node, 1,
					 0) ||
				    terms(s, o->pref_anti_affinity,
					o->npref_anti_affinity, o->ns, pod,
					node, -1, 0);
		}
	}
	if (rc) {
		ps_free(s);
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	}
	if (s->score.n == 0) {
		ps_free(s);
		return KB_SCHED_SKIP;
	}
	if (kb_sched_cycle_write(cy, IPA_PS, s, ps_free))
		return kb_sched_reject(st, KB_SCHED_ERROR, "out of memory");
	return KB_SCHED_SUCCESS;
}

static int score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	const struct ps *s = kb_sched_cycle_read(cy, IPA_PS);
	char k[512];
	*out = 0;
	for (size_t i = 0; s && i < s->nkeys; i++) {
		if (!pair(k, sizeof(k), node, s->keys[i]))
			continue;
		const int64_t *v = kb_strmap_get(&s->score, k);
		if (v)
			*out += *v;
	}
	return KB_SCHED_SUCCESS;
}

static int normalize(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_node_score *sc, size_t n,
    struct kb_sched_status *st)
{
	int64_t min = INT64_MAX, max = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		if (sc[i].score > max)
			max = sc[i].score;
		if (sc[i].score < min)
			min = sc[i].score;
	}
	for (size_t i = 0; i < n; i++)
		sc[i].score = max > min ?
		    KB_SCHED_MAX_SCORE * (sc[i].score - min) / (max - min) :
		    0;
	return KB_SCHED_SUCCESS;
}

/* Node-local (the equivalence cache may reuse Filter and Score) only
 * when neither the pod nor any pod in the cluster has a pod (anti-)
 * affinity term: then nothing is counted across nodes. */
static bool node_local(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod)
{
	const struct kb_sched_snapshot *snap = kb_sched_cycle_snapshot(cy);
	if (!KB_SCHED_FIELD(pod, npref_anti_affinity) || pod->naffinity ||
	    pod->npref_affinity || pod->nanti_affinity ||
	    pod->npref_anti_affinity)
		return false;
	return snap && KB_SCHED_FIELD(snap, naffinity_pods) && snap->totals &&
	    snap->naffinity_pods == 0 && snap->nanti_pods == 0;
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
		.name = "sched-interpodaffinity",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description = "InterPodAffinity: required and preferred pod "
			       "affinity and anti-affinity, both ways",
		.init = init,
		.fini = fini,
		.ops = &ops,
	};
	return &p;
}
