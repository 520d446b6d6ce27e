/* plugins/sched-noderesources — kube-scheduler's NodeResourcesFit: a pod
 * fits a node when its requests (cpu, memory, ephemeral storage, one pod)
 * fit in what the node's pods leave of its allocatable; feasible nodes are
 * scored by the scoring strategy: LeastAllocated (the default: spread),
 * MostAllocated (pack) or RequestedToCapacityRatio (a broken-linear
 * function of utilization given by shape points), over weighted resources.
 *
 * args (pluginConfig, shaped like NodeResourcesFitArgs):
 *     scoringStrategy:
 *       type: LeastAllocated | MostAllocated | RequestedToCapacityRatio
 *       resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
 *       requestedToCapacityRatio:
 *         shape: [{utilization: 0, score: 10}, {utilization: 100, score: 0}]
 */
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>

enum res {
	R_CPU,
	R_MEMORY,
	R_EPHEMERAL,
	R_MAX
};

enum strategy_type {
	S_LEAST,
	S_MOST,
	S_RATIO
};

#define MAX_SHAPE 32

struct policy {
	int type; /* enum strategy_type */
	int64_t weight[R_MAX];
	/* RequestedToCapacityRatio: utilization 0..100 -> score 0..100
	 * (the config's 0..10 times 10), utilizations increasing. */
	int64_t util[MAX_SHAPE], shape_score[MAX_SHAPE];
	size_t nshape;
};

struct args {
	const kb_conf *strategy;
};

struct strategy {
	char *type;
	const kb_conf *resources;
	const kb_conf *ratio;
};

struct resource {
	char *name;
	int64_t weight;
};

static const struct kb_opt args_opts[] = {
	KB_OPT_NODE("scoringStrategy", struct args, strategy,
	    "how feasible nodes are scored"),
	KB_OPT_END,
};

static const struct kb_opt strategy_opts[] = {
	KB_OPT_STR("type", struct strategy, type, "LeastAllocated",
	    "LeastAllocated or MostAllocated"),
	KB_OPT_NODE("resources", struct strategy, resources,
	    "[{name, weight}]; default cpu and memory, weight 1"),
	KB_OPT_NODE("requestedToCapacityRatio", struct strategy, ratio,
	    "{shape: [{utilization: 0-100, score: 0-10}]}"),
	KB_OPT_END,
};

static const struct kb_opt resource_opts[] = {
	KB_OPT_STR_REQ("name", struct resource, name,
	    "cpu, memory or ephemeral-storage"),
	KB_OPT_INT("weight", struct resource, weight, "1", 1, 100,
	    "its weight"),
	KB_OPT_END,
};

/* requestedToCapacityRatio.shape, validated as kube-scheduler does. */
static int read_shape(kb_ctx *ctx, const kb_conf *ratio, struct policy *p)
{
	const kb_conf *shape = kb_conf_get(ratio, "shape");
	if (kb_conf_type(shape) != KB_CONF_SEQ || kb_conf_len(shape) == 0)
		return kb_fail(ctx, KB_EINVAL,
		    "%s: RequestedToCapacityRatio needs requestedToCapacityRatio.shape, a list of {utilization, score}",
		    ratio ? kb_conf_where(ratio) : "scoringStrategy");
	if (kb_conf_len(shape) > MAX_SHAPE)
		return kb_fail(ctx, KB_EINVAL, "%s: at most %d shape points",
		    kb_conf_where(shape), MAX_SHAPE);
	for (size_t i = 0; i < kb_conf_len(shape); i++) {
		const kb_conf *pt = kb_conf_at(shape, i);
		int64_t u, sc;
		const kb_conf *un = kb_conf_get(pt, "utilization"),
			      *sn = kb_conf_get(pt, "score");
		if (kb_conf_type(pt) != KB_CONF_MAP || un == NULL ||
		    sn == NULL || kb_conf_to_int(kb_conf_str(un), &u) ||
		    kb_conf_to_int(kb_conf_str(sn), &sc))
			return kb_fail(ctx, KB_EINVAL,
			    "%s: a shape point is {utilization: N, score: N}",
			    kb_conf_where(pt));
		if (u < 0 || u > 100)
			return kb_fail(ctx, KB_EINVAL,
			    "%s: utilization must be within [0, 100]",
			    kb_conf_where(un));
		if (sc < 0 || sc > 10)
			return kb_fail(ctx, KB_EINVAL,
			    "%s: score must be within [0, 10]",
			    kb_conf_where(sn));
		if (i > 0 && u <= p->util[i - 1])
			return kb_fail(ctx, KB_EINVAL,
			    "%s: utilization values must be sorted in increasing order",
			    kb_conf_where(un));
		p->util[i] = u;
		p->shape_score[i] = sc * (KB_SCHED_MAX_SCORE / 10);
		p->nshape = i + 1;
	}
	return 0;
}

static int configure(kb_ctx *ctx, const kb_conf *conf, struct policy *p)
{
	char err[512];
	const char *who = kb_instance(ctx);
	struct args a = { 0 };
	struct strategy s = { 0 };
	int rc = 0;
	p->weight[R_CPU] = p->weight[R_MEMORY] = 1;
	if (kb_conf_opts(conf, args_opts, &a, who, err, sizeof(err)))
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	if (kb_conf_opts(a.strategy, strategy_opts, &s, who, err,
		sizeof(err))) {
		rc = kb_fail(ctx, KB_EINVAL, "%s", err);
		goto out_args;
	}
	if (!strcmp(s.type, "MostAllocated")) {
		p->type = S_MOST;
	} else if (!strcmp(s.type, "RequestedToCapacityRatio")) {
		p->type = S_RATIO;
		if ((rc = read_shape(ctx, s.ratio, p)))
			goto out_strategy;
	} else if (strcmp(s.type, "LeastAllocated")) {
		rc = kb_fail(ctx, KB_EINVAL,
		    "%s: scoringStrategy.type `%s` is not supported (LeastAllocated, MostAllocated, RequestedToCapacityRatio)",
		    kb_conf_where(a.strategy), s.type);
		goto out_strategy;
	}
	if (s.resources) {
		if (kb_conf_type(s.resources) != KB_CONF_SEQ) {
			rc = kb_fail(ctx, KB_EINVAL,
			    "%s: resources must be a list",
			    kb_conf_where(s.resources));
			goto out_strategy;
		}
		memset(p->weight, 0, sizeof(p->weight));
		for (size_t i = 0; i < kb_conf_len(s.resources); i++) {
			struct resource r = { 0 };
			if (kb_conf_opts(kb_conf_at(s.resources, i),
				resource_opts, &r, who, err, sizeof(err))) {
				rc = kb_fail(ctx, KB_EINVAL, "%s", err);
				goto out_strategy;
			}
			int k = !strcmp(r.name, "cpu")           ? R_CPU :
			    !strcmp(r.name, "memory")            ? R_MEMORY :
			    !strcmp(r.name, "ephemeral-storage") ? R_EPHEMERAL :
								   -1;
			if (k < 0)
				rc = kb_fail(ctx, KB_EINVAL,
				    "%s: unknown resource `%s`",
				    kb_conf_where(kb_conf_at(s.resources, i)),
				    r.name);
			else
				p->weight[k] = r.weight;
			kb_conf_opts_free(resource_opts, &r);
			if (rc)
				goto out_strategy;
		}
	}
out_strategy:
	kb_conf_opts_free(strategy_opts, &s);
out_args:
	kb_conf_opts_free(args_opts, &a);
	return rc;
}

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	int rc = configure(ctx, conf, p);
	if (rc) {
		free(p);
		return rc;
	}
	*state = p;
	return 0;
}

static void fini(void *state)
{
	free(state);
}

static int filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	const struct kb_sched_resources *req = &pod->requests;
	const struct kb_sched_resources *al = &node->allocatable;
	const struct kb_sched_resources *used = &node->requested;
	int rc = KB_SCHED_SUCCESS;
	if ((int64_t)node->npods + 1 > al->pods)
		rc = kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
		    "Too many pods");
	if (req->milli_cpu > 0 &&
	    req->milli_cpu > al->milli_cpu - used->milli_cpu)
		rc = kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
		    "Insufficient cpu");
	if (req->memory > 0 && req->memory > al->memory - used->memory)
		rc = kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
		    "Insufficient memory");
	if (req->ephemeral_storage > 0 &&
	    req->ephemeral_storage >
		al->ephemeral_storage - used->ephemeral_storage)
		rc = kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
		    "Insufficient ephemeral-storage");
	return rc;
}

/* Filter from the columns: bit k of `fails` is the k-th check of filter()
 * (pods, cpu, memory, ephemeral storage); its reason bits are looked up
 * the first time a node fails it. */
static int filter_nodes(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_columns *c,
    const uint32_t *rows, size_t n, uint64_t *out, struct kb_sched_status *st)
{
	static const char *const why[4] = { "Too many pods", "Insufficient cpu",
		"Insufficient memory", "Insufficient ephemeral-storage" };
	uint64_t bit[4] = { 0 };
	const int64_t cpu = pod->requests.milli_cpu, mem = pod->requests.memory,
		      eph = pod->requests.ephemeral_storage;
	for (size_t i = 0; i < n; i++) {
		uint32_t r = rows[i];
		unsigned fails =
		    (unsigned)(c->npods[r] + 1 > c->alloc_pods[r]) |
		    (unsigned)(cpu > 0 && cpu > c->alloc_cpu[r] - c->req_cpu[r])
			<< 1 |
		    (unsigned)(mem > 0 && mem > c->alloc_mem[r] - c->req_mem[r])
			<< 2 |
		    (unsigned)(eph > 0 && eph > c->alloc_eph[r] - c->req_eph[r])
			<< 3;
		uint64_t o = 0;
		for (int k = 0; fails && k < 4; k++) {
			if (!(fails & (1u << k)))
				continue;
			if (bit[k] == 0)
				bit[k] = kb_sched_reason_bit(st,
				    KB_SCHED_UNSCHEDULABLE, "%s", why[k]);
			o |= bit[k];
		}
		out[i] = o;
	}
	return KB_SCHED_SUCCESS;
}

/* kube-scheduler's helper.BuildBrokenLinearFunction over the shape. */
static int64_t broken_linear(const struct policy *p, int64_t u)
{
	for (size_t i = 0; i < p->nshape; i++) {
		if (u <= p->util[i]) {
			if (i == 0)
				return p->shape_score[0];
			return p->shape_score[i - 1] +
			    (p->shape_score[i] - p->shape_score[i - 1]) *
			    (u - p->util[i - 1]) /
			    (p->util[i] - p->util[i - 1]);
		}
	}
	return p->shape_score[p->nshape - 1];
}

/* a / b rounded down, for 0 <= a and 0 < b. Through a double when both
 * are below 2^46: the quotient is at most ~101 here, and a correctly
 * rounded a / b then stays within [floor, floor + 1) (the gap to the next
 * integer, >= 1/b, exceeds the rounding error, <= 101 * 2^-53), so the
 * truncation equals the integer division — which a double division,
 * pipelined, does several times faster over thousands of nodes. */
#define EXACT_LIMIT (1LL << 46)
static inline int64_t div_small(int64_t a, int64_t b)
{
	if (a < EXACT_LIMIT && b < EXACT_LIMIT)
		return (int64_t)((double)a / (double)b);
	return a / b;
}

/* Inlined into the batch loop, where the branches on the strategy are
 * the same for every node. */
static inline __attribute__((always_inline)) int64_t
resource_score(const struct policy *p, int64_t requested, int64_t capacity)
{
	switch (p->type) {
	case S_MOST:
		if (requested < 0)
			break;
		return div_small((requested > capacity ? capacity : requested) *
			KB_SCHED_MAX_SCORE,
		    capacity);
	case S_RATIO:
		if (requested > capacity)
			return broken_linear(p, 100);
		return broken_linear(p, requested * 100 / capacity);
	default:
		if (requested > capacity)
			return 0;
		if (requested < 0)
			break;
		return div_small((capacity - requested) * KB_SCHED_MAX_SCORE,
		    capacity);
	}
	/* Negative requests (never from a valid pod): integer division. */
	if (p->type == S_MOST)
		return (requested > capacity ? capacity : requested) *
		    KB_SCHED_MAX_SCORE / capacity;
	return (capacity - requested) * KB_SCHED_MAX_SCORE / capacity;
}

/* Resources the node has none of are left out, as in kube-scheduler;
 * RequestedToCapacityRatio also leaves out resources scoring 0 and rounds
 * the weighted mean. */
static inline __attribute__((always_inline)) int64_t
node_score(const struct policy *p, const int64_t req[R_MAX],
    const int64_t cap[R_MAX])
{
	int64_t sum = 0, weights = 0;
	for (int r = 0; r < R_MAX; r++) {
		if (p->weight[r] == 0 || cap[r] <= 0)
			continue;
		int64_t sc = resource_score(p, req[r], cap[r]);
		if (p->type == S_RATIO && sc == 0)
			continue;
		sum += sc * p->weight[r];
		weights += p->weight[r];
	}
	if (weights == 0)
		return 0;
	if (p->type == S_RATIO)
		return (sum + weights / 2) / weights;
	if (sum < 0)
		return sum / weights;
	/* The default weights (1 and 1) sum to a power of two. */
	if ((weights & (weights - 1)) == 0)
		return sum >> __builtin_ctzll((unsigned long long)weights);
	return div_small(sum, weights);
}

static int score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	const int64_t req[R_MAX] = {
		node->nonzero_requested.milli_cpu +
		    pod->nonzero_requests.milli_cpu,
		node->nonzero_requested.memory + pod->nonzero_requests.memory,
		node->requested.ephemeral_storage +
		    pod->requests.ephemeral_storage,
	};
	const int64_t cap[R_MAX] = { node->allocatable.milli_cpu,
		node->allocatable.memory, node->allocatable.ephemeral_storage };
	*out = node_score(state, req, cap);
	return KB_SCHED_SUCCESS;
}

/* Score from the columns: the same numbers, read from dense arrays. */
static int score_nodes(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_columns *c,
    const uint32_t *rows, size_t n, int64_t *out, struct kb_sched_status *st)
{
	const struct policy *p = state;
	const int64_t cpu = pod->nonzero_requests.milli_cpu,
		      mem = pod->nonzero_requests.memory,
		      eph = pod->requests.ephemeral_storage;
	for (size_t i = 0; i < n; i++) {
		uint32_t r = rows[i];
		const int64_t req[R_MAX] = { c->nz_cpu[r] + cpu,
			c->nz_mem[r] + mem, c->req_eph[r] + eph };
		const int64_t cap[R_MAX] = { c->alloc_cpu[r], c->alloc_mem[r],
			c->alloc_eph[r] };
		out[i] = node_score(p, req, cap);
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
	.filter = filter,
	.score = score,
	.filter_nodes = filter_nodes,
	.score_nodes = score_nodes,
	.node_local = node_local,
};

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "sched-noderesources",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description =
		    "resource fit; LeastAllocated, MostAllocated or RequestedToCapacityRatio scoring",
		.init = init,
		.fini = fini,
		.ops = &ops,
	};
	return &p;
}
