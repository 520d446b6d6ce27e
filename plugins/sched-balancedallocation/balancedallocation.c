/* plugins/sched-balancedallocation — kube-scheduler's
 * NodeResourcesBalancedAllocation: among feasible nodes, prefer those
 * where, with the pod placed, the fractions of each resource requested
 * are closest to each other: score = (1 - std-dev of the fractions) * 100
 * (for two resources the std-dev is |f1 - f2| / 2). A fraction is capped
 * at 1; resources the node has none of are left out. A pod that requests
 * none of the resources (best effort) skips the policy.
 *
 * args (pluginConfig, shaped like NodeResourcesBalancedAllocationArgs):
 *     resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
 * (weights are accepted and ignored, as in kube-scheduler).
 */
#include <math.h>
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

struct policy {
	bool use[R_MAX];
};

struct args {
	const kb_conf *resources;
};

struct resource {
	char *name;
	int64_t weight;
};

static const struct kb_opt args_opts[] = {
	KB_OPT_NODE("resources", struct args, resources,
	    "[{name, weight}]; default cpu and memory"),
	KB_OPT_END,
};

static const struct kb_opt resource_opts[] = {
	KB_OPT_STR_REQ("name", struct resource, name,
	    "cpu, memory or ephemeral-storage"),
	KB_OPT_INT("weight", struct resource, weight, "1", 1, 100,
	    "accepted, not used (as in kube-scheduler)"),
	KB_OPT_END,
};

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	const char *who = kb_instance(ctx);
	struct args a = { 0 };
	struct policy *p = calloc(1, sizeof(*p));
	int rc = 0;
	if (p == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	p->use[R_CPU] = p->use[R_MEMORY] = true;
	if (kb_conf_opts(conf, args_opts, &a, who, err, sizeof(err))) {
		free(p);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	if (a.resources) {
		if (kb_conf_type(a.resources) != KB_CONF_SEQ ||
		    kb_conf_len(a.resources) == 0) {
			rc = kb_fail(ctx, KB_EINVAL,
			    "%s: resources must be a non-empty list of {name, weight}",
			    kb_conf_where(a.resources));
			goto out;
		}
		memset(p->use, 0, sizeof(p->use));
		for (size_t i = 0; i < kb_conf_len(a.resources); i++) {
			struct resource r = { 0 };
			if (kb_conf_opts(kb_conf_at(a.resources, i),
				resource_opts, &r, who, err, sizeof(err))) {
				rc = kb_fail(ctx, KB_EINVAL, "%s", err);
				goto out;
			}
			int k = !strcmp(r.name, "cpu")           ? R_CPU :
			    !strcmp(r.name, "memory")            ? R_MEMORY :
			    !strcmp(r.name, "ephemeral-storage") ? R_EPHEMERAL :
								   -1;
			if (k < 0)
				rc = kb_fail(ctx, KB_EINVAL,
				    "%s: unknown resource `%s`",
				    kb_conf_where(kb_conf_at(a.resources, i)),
				    r.name);
			else
				p->use[k] = true;
			kb_conf_opts_free(resource_opts, &r);
			if (rc)
				goto out;
		}
	}
out:
	kb_conf_opts_free(args_opts, &a);
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

static int pre_score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *const *nodes,
    size_t n, struct kb_sched_status *st)
{
	const struct policy *p = state;
	if ((p->use[R_CPU] && pod->requests.milli_cpu > 0) ||
	    (p->use[R_MEMORY] && pod->requests.memory > 0) ||
	    (p->use[R_EPHEMERAL] && pod->requests.ephemeral_storage > 0))
		return KB_SCHED_SUCCESS;
	return KB_SCHED_SKIP;
}

static inline int64_t balance(const struct policy *p, const int64_t req[R_MAX],
    const int64_t cap[R_MAX])
{
	double f[R_MAX], total = 0;
	size_t nf = 0;
	for (int r = 0; r < R_MAX; r++) {
		if (!p->use[r] || cap[r] <= 0)
			continue;
		double x = (double)req[r] / (double)cap[r];
		if (x > 1)
			x = 1;
		f[nf++] = x;
		total += x;
	}
	double sd = 0;
	if (nf == 2) {
		sd = fabs(f[0] - f[1]) / 2;
	} else if (nf > 2) {
		double mean = total / (double)nf, sum = 0;
		for (size_t i = 0; i < nf; i++)
			sum += (f[i] - mean) * (f[i] - mean);
		sd = sqrt(sum / (double)nf);
	}
	return (int64_t)((1 - sd) * KB_SCHED_MAX_SCORE);
}

static int score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	const int64_t req[R_MAX] = {
		node->requested.milli_cpu + pod->requests.milli_cpu,
		node->requested.memory + pod->requests.memory,
		node->requested.ephemeral_storage +
		    pod->requests.ephemeral_storage,
	};
	const int64_t cap[R_MAX] = { node->allocatable.milli_cpu,
		node->allocatable.memory, node->allocatable.ephemeral_storage };
	*out = balance(state, req, cap);
	return KB_SCHED_SUCCESS;
}

/* Score from the columns (the same arithmetic, dense arrays). */
static int score_nodes(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_columns *c,
    const uint32_t *rows, size_t n, int64_t *out, struct kb_sched_status *st)
{
	const struct policy *p = state;
	const int64_t cpu = pod->requests.milli_cpu, mem = pod->requests.memory,
		      eph = pod->requests.ephemeral_storage;
	if (p->use[R_CPU] && p->use[R_MEMORY] && !p->use[R_EPHEMERAL]) {
		/* The default (cpu and memory): balance()'s two-resource
		 * case, the same operations in the same order. */
		for (size_t i = 0; i < n; i++) {
			uint32_t r = rows[i];
			int64_t cc = c->alloc_cpu[r], cm = c->alloc_mem[r];
			if (cc <= 0 || cm <= 0) {
				const int64_t req[R_MAX] = { c->req_cpu[r] +
					    cpu,
					c->req_mem[r] + mem, 0 };
				const int64_t cap[R_MAX] = { cc, cm, 0 };
				out[i] = balance(p, req, cap);
				continue;
			}
			double f0 = (double)(c->req_cpu[r] + cpu) / (double)cc;
			double f1 = (double)(c->req_mem[r] + mem) / (double)cm;
			f0 = f0 > 1 ? 1 : f0;
			f1 = f1 > 1 ? 1 : f1;
			double sd = fabs(f0 - f1) / 2;
			out[i] = (int64_t)((1 - sd) * KB_SCHED_MAX_SCORE);
		}
		return KB_SCHED_SUCCESS;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t r = rows[i];
		const int64_t req[R_MAX] = { c->req_cpu[r] + cpu,
			c->req_mem[r] + mem, c->req_eph[r] + eph };
		const int64_t cap[R_MAX] = { c->alloc_cpu[r], c->alloc_mem[r],
			c->alloc_eph[r] };
		out[i] = balance(p, req, cap);
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
	.pre_score = pre_score,
	.score = score,
	.score_nodes = score_nodes,
	.node_local = node_local,
};

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "sched-balancedallocation",
		.kind = KB_KIND_SCHED_POLICY,
		.version = KUBUS_VERSION,
		.description = "NodeResourcesBalancedAllocation: balance the "
			       "requested fractions of cpu and memory",
		.init = init,
		.fini = fini,
		.ops = &ops,
	};
	return &p;
}
