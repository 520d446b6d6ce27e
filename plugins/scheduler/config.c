/* plugins/scheduler/config.c — the scheduler's config, shaped like
 * KubeSchedulerConfiguration, and the policies its profiles load.
 *
 *     podInitialBackoffSeconds: 1
 *     podMaxBackoffSeconds: 10
 *     profiles:
 *       - schedulerName: default-scheduler
 *         plugins:
 *           multiPoint: {enabled: [{name: sched-foo, weight: 2}]}
 *           filter: {disabled: [{name: "*"}], enabled: [{name: sched-x}]}
 *           score: {enabled: [{name: sched-noderesources, weight: 5}]}
 *         pluginConfig:
 *           - name: sched-noderesources
 *             args: {scoringStrategy: {type: MostAllocated}}
 *
 *     leaderElection: {leaderElect: true, leaseDuration: 15s,
 *                      resourceName: kube-scheduler,
 *                      resourceNamespace: kube-system}
 *
 * Each point starts from the default policies (and multiPoint's enabled)
 * that implement it, drops its `disabled` (`*`: all of them) and adds its
 * `enabled`. A policy is loaded once per profile, with its pluginConfig
 * args as its config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scheduler.h"

/* kube-scheduler's default plugins, in its order (the first filter to
 * reject a node gives the reason counted for it) and with its weights. */
static const struct {
	const char *name;
	int64_t weight;
} defaults[] = {
	{ "sched-nodeunschedulable", 1 },
	{ "sched-nodename", 1 },
	{ "sched-tainttoleration", 3 },
	{ "sched-nodeaffinity", 2 },
	{ "sched-nodeports", 1 },
	{ "sched-noderesources", 1 },
	{ "sched-podtopologyspread", 2 },
	{ "sched-interpodaffinity", 2 },
	{ "sched-balancedallocation", 1 },
};

static const char *const point_names[P_MAX] = {
	"queueSort",
	"preFilter",
	"filter",
	"postFilter",
	"preScore",
	"score",
	"reserve",
	"permit",
	"preBind",
	"bind",
	"postBind",
};

struct top {
	char *api_version, *kind;
	int64_t backoff_initial, backoff_max, unsched_max, bind_timeout;
	int64_t parallelism;
	bool equivalence_cache;
	const kb_conf *profiles;
	const kb_conf *leader;
	const kb_conf *client;
};

static const struct kb_opt top_opts[] = {
	KB_OPT_STR("apiVersion", struct top, api_version, NULL,
	    "ignored (KubeSchedulerConfiguration)"),
	KB_OPT_STR("kind", struct top, kind, NULL, "ignored"),
	KB_OPT_INT("podInitialBackoffSeconds", struct top, backoff_initial, "1",
	    0, 3600, "first backoff of a pod that failed"),
	KB_OPT_INT("podMaxBackoffSeconds", struct top, backoff_max, "10", 0,
	    86400, "longest backoff"),
	KB_OPT_DURATION("podMaxInUnschedulablePodsDuration", struct top,
	    unsched_max, "5m",
	    "retry unschedulable pods after this even without a cluster event"),
	KB_OPT_DURATION("bindTimeout", struct top, bind_timeout, "30s",
	    "how long a pods/binding call may take"),
	KB_OPT_INT("parallelism", struct top, parallelism, "0", 0, 64,
	    "threads running Filter and Score over the nodes (0: half the CPUs)"),
	KB_OPT_BOOL("equivalenceCache", struct top, equivalence_cache, "true",
	    "reuse Filter and Score results per node across equal pods"),
	KB_OPT_NODE("profiles", struct top, profiles, "scheduling profiles"),
	KB_OPT_NODE("leaderElection", struct top, leader,
	    "{leaderElect, leaseDuration, resourceName, resourceNamespace}"),
	KB_OPT_NODE("clientConnection", struct top, client,
	    "{qps, burst}: the limit of the events the scheduler records "
	    "(kube-scheduler's client limit, which its events wait for)"),
	KB_OPT_END,
};

struct leader {
	bool elect;
	int64_t lease_ms;
	char *name, *ns;
};

struct client {
	int64_t qps, burst;
};

static const struct kb_opt client_opts[] = {
	KB_OPT_INT("qps", struct client, qps, "50", 0, 100000,
	    "requests a second once the burst is spent (0: no limit)"),
	KB_OPT_INT("burst", struct client, burst, "100", 1, 100000,
	    "requests at once"),
	KB_OPT_END,
};

static const struct kb_opt leader_opts[] = {
	KB_OPT_BOOL("leaderElect", struct leader, elect, "true",
	    "schedule only while holding the Lease (several control planes)"),
	KB_OPT_DURATION("leaseDuration", struct leader, lease_ms, "15s",
	    "how long a lease not renewed stays taken"),
	KB_OPT_STR("resourceName", struct leader, name, "kube-scheduler",
	    "the Lease"),
	KB_OPT_STR("resourceNamespace", struct leader, ns, "kube-system",
	    "its namespace"),
	KB_OPT_END,
};

/* "FILE:LINE:COL: what at WHERE" for a config node. */
static int cfail(kb_ctx *ctx, const kb_conf *n, const char *what)
{
	return kb_fail(ctx, KB_EINVAL, "%s:%d:%d: %s at %s", kb_conf_file(n),
	    kb_conf_line(n), kb_conf_col(n), what, kb_conf_where(n));
}

struct want {
	const char *name;
	int64_t weight;
};

struct wants {
	struct want v[64];
	size_t n;
};

static void wants_add(struct wants *w, const char *name, int64_t weight)
{
	for (size_t i = 0; i < w->n; i++) {
		if (!strcmp(w->v[i].name, name)) {
			if (weight)
				w->v[i].weight = weight;
			return;
		}
	}
	if (w->n < sizeof(w->v) / sizeof(w->v[0]))
		w->v[w->n++] = (struct want){ name, weight };
}

static void wants_del(struct wants *w, const char *name)
{
	if (!strcmp(name, "*")) {
		w->n = 0;
		return;
	}
	for (size_t i = 0; i < w->n; i++) {
		if (!strcmp(w->v[i].name, name)) {
			memmove(&w->v[i], &w->v[i + 1],
			    (w->n - i - 1) * sizeof(w->v[0]));
			w->n--;
			return;
		}
	}
}

/* Read an `enabled`/`disabled` list of {name, weight}. */
static int read_list(kb_ctx *ctx, const kb_conf *list, bool enabled,
    struct wants *w, bool del)
{
	if (list == NULL || kb_conf_type(list) == KB_CONF_NULL)
		return 0;
	if (kb_conf_type(list) != KB_CONF_SEQ)
		return cfail(ctx, list, "expected a list of {name, weight}");
	for (size_t i = 0; i < kb_conf_len(list); i++) {
		const kb_conf *e = kb_conf_at(list, i);
		if (kb_conf_type(e) != KB_CONF_MAP)
			return cfail(ctx, e, "expected {name, weight}");
		for (size_t k = 0; k < kb_conf_len(e); k++) {
			const char *key = kb_conf_key_at(e, k);
			if (strcmp(key, "name") &&
			    (!enabled || strcmp(key, "weight"))) {
				char what[300];
				snprintf(what, sizeof(what), "unknown key `%s`",
				    key);
				return cfail(ctx, kb_conf_at(e, k), what);
			}
		}
		const char *name = kb_conf_str(kb_conf_get(e, "name"));
		if (name == NULL || !*name)
			return cfail(ctx, e, "a plugin needs a name");
		int64_t weight = 0;
		const kb_conf *wn = kb_conf_get(e, "weight");
		if (wn &&
		    (kb_conf_to_int(kb_conf_str(wn), &weight) || weight < 1 ||
			weight > 100))
			return cfail(ctx, wn,
			    "weight must be an integer from 1 to 100");
		if (enabled && !strcmp(name, "*"))
			return cfail(ctx, e, "`*` only disables");
		if (del)
			wants_del(w, name);
		else
			wants_add(w, name, weight);
	}
	return 0;
}

static int check_point(kb_ctx *ctx, const kb_conf *pt)
{
	if (pt == NULL)
		return 0;
	if (kb_conf_type(pt) != KB_CONF_MAP)
		return cfail(ctx, pt, "expected {enabled, disabled}");
	for (size_t k = 0; k < kb_conf_len(pt); k++) {
		const char *key = kb_conf_key_at(pt, k);
		if (strcmp(key, "enabled") && strcmp(key, "disabled")) {
			char what[300];
			snprintf(what, sizeof(what),
			    "unknown key `%s` (enabled, disabled)", key);
			return cfail(ctx, kb_conf_at(pt, k), what);
		}
	}
	return 0;
}

static bool has_slot(const struct kb_sched_policy_ops *o, int point)
{
	switch (point) {
	case P_QUEUESORT:
		return KB_SCHED_HAS(o, less);
	case P_PREFILTER:
		return KB_SCHED_HAS(o, pre_filter);
	case P_FILTER:
		return KB_SCHED_HAS(o, filter);
	case P_POSTFILTER:
		return KB_SCHED_HAS(o, post_filter);
	case P_PRESCORE:
		return KB_SCHED_HAS(o, pre_score);
	case P_SCORE:
		return KB_SCHED_HAS(o, score);
	case P_RESERVE:
		return KB_SCHED_HAS(o, reserve) || KB_SCHED_HAS(o, unreserve);
	case P_PERMIT:
		return KB_SCHED_HAS(o, permit);
	case P_PREBIND:
		return KB_SCHED_HAS(o, pre_bind);
	case P_BIND:
		return KB_SCHED_HAS(o, bind);
	case P_POSTBIND:
		return KB_SCHED_HAS(o, post_bind);
	}
	return false;
}

static struct sp_policy *find_policy(struct sp_profile *p, const char *name)
{
	for (size_t i = 0; i < p->npolicies; i++)
		if (!strcmp(p->policies[i]->name, name))
			return p->policies[i];
	return NULL;
}

static const kb_conf *plugin_args(const kb_conf *pc, const char *name)
{
	for (size_t i = 0; i < kb_conf_len(pc); i++) {
		const kb_conf *e = kb_conf_at(pc, i);
		const char *n = kb_conf_str(kb_conf_get(e, "name"));
		if (n && !strcmp(n, name))
			return kb_conf_get(e, "args");
	}
	return NULL;
}

static int load_policy(kb_ctx *ctx, struct sp_profile *p, const char *name,
    const kb_conf *pc)
{
	if (find_policy(p, name))
		return 0;
	/* Slots point at policies: each is allocated once and never moves. */
	struct sp_policy **v =
	    realloc(p->policies, (p->npolicies + 1) * sizeof(*v));
	if (v == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	p->policies = v;
	struct kb_ext *ext;
	int rc = kb_ext_load(ctx, KB_KIND_SCHED_POLICY, name,
	    plugin_args(pc, name), &ext);
	if (rc)
		return rc; /* kb_ext_load named the policy and said why */
	const struct kb_sched_policy_ops *ops = ext->ops;
	struct sp_policy *np = calloc(1, sizeof(*np));
	if (ops->size < offsetof(struct kb_sched_policy_ops, less) ||
	    np == NULL || (np->name = strdup(name)) == NULL) {
		kb_ext_unload(ctx, ext);
		free(np);
		if (ops->size < offsetof(struct kb_sched_policy_ops, less))
			return kb_fail(ctx, KB_EINVAL,
			    "policy %s: its ops table is too small (%zu bytes)",
			    name, ops->size);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	np->ext = ext;
	np->ops = ops;
	np->state = ext->state;
	p->policies[p->npolicies++] = np;
	return 0;
}

static int load_profile(kb_ctx *ctx, const kb_conf *pn, struct sp_profile *p)
{
	const kb_conf *plugins = NULL, *pc = NULL;
	const char *name = "default-scheduler";
	if (pn && kb_conf_type(pn) != KB_CONF_MAP)
		return cfail(ctx, pn,
		    "expected a profile {schedulerName, plugins, pluginConfig}");
	for (size_t k = 0; pn && k < kb_conf_len(pn); k++) {
		const char *key = kb_conf_key_at(pn, k);
		const kb_conf *v = kb_conf_at(pn, k);
		if (!strcmp(key, "schedulerName") && kb_conf_str(v))
			name = kb_conf_str(v);
		else if (!strcmp(key, "plugins"))
			plugins = v;
		else if (!strcmp(key, "pluginConfig"))
			pc = v;
		else {
			char what[300];
			snprintf(what, sizeof(what),
			    "unknown key `%s` (schedulerName, plugins, pluginConfig)",
			    key);
			return cfail(ctx, v, what);
		}
	}
	p->name = strdup(name);
	if (pc && kb_conf_type(pc) != KB_CONF_SEQ)
		return cfail(ctx, pc,
		    "pluginConfig must be a list of {name, args}");
	for (size_t i = 0; i < kb_conf_len(pc); i++) {
		const kb_conf *e = kb_conf_at(pc, i);
		if (kb_conf_type(e) != KB_CONF_MAP ||
		    kb_conf_str(kb_conf_get(e, "name")) == NULL)
			return cfail(ctx, e, "expected {name, args}");
		for (size_t k = 0; k < kb_conf_len(e); k++)
			if (strcmp(kb_conf_key_at(e, k), "name") &&
			    strcmp(kb_conf_key_at(e, k), "args"))
				return cfail(ctx, kb_conf_at(e, k),
				    "unknown key (name, args)");
	}
	if (plugins && kb_conf_type(plugins) != KB_CONF_MAP)
		return cfail(ctx, plugins,
		    "plugins must map extension points to {enabled, disabled}");
	for (size_t k = 0; k < kb_conf_len(plugins); k++) {
		const char *key = kb_conf_key_at(plugins, k);
		bool known = !strcmp(key, "multiPoint");
		for (int i = 0; i < P_MAX; i++)
			known |= !strcmp(key, point_names[i]);
		if (!known) {
			char what[300];
			snprintf(what, sizeof(what),
			    "unknown extension point `%s`", key);
			return cfail(ctx, kb_conf_at(plugins, k), what);
		}
		int rc = check_point(ctx, kb_conf_at(plugins, k));
		if (rc)
			return rc;
	}

	/* The base set: the defaults, then multiPoint. */
	struct wants base = { .n = 0 };
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		wants_add(&base, defaults[i].name, defaults[i].weight);
	const kb_conf *mp = kb_conf_get(plugins, "multiPoint");
	int rc =
	    read_list(ctx, kb_conf_get(mp, "disabled"), false, &base, true);
	if (rc == 0)
		rc = read_list(ctx, kb_conf_get(mp, "enabled"), true, &base,
		    false);
	if (rc)
		return rc;
	/* Load what any point may use, so that slots can be checked. */
	for (size_t i = 0; i < base.n; i++)
		if ((rc = load_policy(ctx, p, base.v[i].name, pc)))
			return rc;
	for (int pt = 0; pt < P_MAX; pt++) {
		const kb_conf *pn2 = kb_conf_get(plugins, point_names[pt]);
		struct wants w = { .n = 0 };
		for (size_t i = 0; i < base.n; i++)
			if (has_slot(find_policy(p, base.v[i].name)->ops, pt))
				wants_add(&w, base.v[i].name, base.v[i].weight);
		rc = read_list(ctx, kb_conf_get(pn2, "disabled"), false, &w,
		    true);
		if (rc == 0)
			rc = read_list(ctx, kb_conf_get(pn2, "enabled"), true,
			    &w, false);
		for (size_t i = 0; rc == 0 && i < w.n; i++)
			rc = load_policy(ctx, p, w.v[i].name, pc);
		if (rc)
			return rc;
		if (pt == P_QUEUESORT && w.n > 1)
			return cfail(ctx, pn2 ? pn2 : plugins,
			    "a profile has at most one queueSort");
		p->points[pt] = calloc(w.n ? w.n : 1, sizeof(struct sp_slot));
		if (p->points[pt] == NULL)
			return kb_fail(ctx, KB_ENOMEM, "out of memory");
		for (size_t i = 0; i < w.n; i++) {
			struct sp_policy *pol = find_policy(p, w.v[i].name);
			if (!has_slot(pol->ops, pt)) {
				char what[400];
				snprintf(what, sizeof(what),
				    "policy %s has no %s slot", pol->name,
				    point_names[pt]);
				return cfail(ctx, pn2, what);
			}
			p->points[pt][p->npoints[pt]++] = (struct sp_slot){ pol,
				w.v[i].weight ? w.v[i].weight : 1 };
		}
	}
	return 0;
}

static void profile_free(kb_ctx *ctx, struct sp_profile *p)
{
	for (size_t i = 0; i < p->npolicies; i++) {
		kb_ext_unload(ctx, p->policies[i]->ext);
		free(p->policies[i]->name);
		free(p->policies[i]);
	}
	free(p->policies);
	for (int pt = 0; pt < P_MAX; pt++)
		free(p->points[pt]);
	sp_scratch_free(p->scratch);
	sp_eq_free(p->eq);
	p->eq = NULL;
	free(p->name);
}

/* A nested map's options (clientConnection, leaderElection) into out;
 * KB_EINVAL, said through kb_fail, when they are wrong. */
static int sub_opts(kb_ctx *ctx, const kb_conf *node,
    const struct kb_opt *opts, void *out)
{
	char err[512];
	if (kb_conf_opts(node, opts, out, kb_instance(ctx), err, sizeof(err)))
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	return 0;
}

int sp_config_load(kb_ctx *ctx, const kb_conf *conf, struct sp_config *c)
{
	char err[512];
	struct top t = { 0 };
	memset(c, 0, sizeof(*c));
	if (kb_conf_opts(conf, top_opts, &t, kb_instance(ctx), err,
		sizeof(err)))
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	c->backoff_initial_ms = t.backoff_initial * 1000;
	c->backoff_max_ms = t.backoff_max * 1000;
	c->unsched_max_ms = t.unsched_max;
	c->bind_timeout_ms = t.bind_timeout;
	c->parallelism = t.parallelism;
	if (c->parallelism == 0) {
		/* Half the CPUs: the API server and the store, on the same
		 * machine, need the rest (on 2 cores, 2 threads measured
		 * half the end-to-end rate of 1). */
		long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
		c->parallelism = n < 1 ? 1 : n > 16 ? 16 : n;
	}
	struct client cl = { 0 };
	struct leader le = { 0 };
	int rc = sub_opts(ctx, t.client, client_opts, &cl);
	if (rc == 0)
		rc = sub_opts(ctx, t.leader, leader_opts, &le);
	if (rc) {
		kb_conf_opts_free(top_opts, &t);
		return rc;
	}
	c->client_qps = cl.qps;
	c->client_burst = cl.burst;
	c->leader_elect = le.elect;
	c->lease_ms = le.lease_ms;
	c->lease_name = le.name;
	c->lease_ns = le.ns;
	le.name = le.ns = NULL;
	kb_conf_opts_free(leader_opts, &le);
	size_t n = t.profiles ? kb_conf_len(t.profiles) : 0;
	if (t.profiles && kb_conf_type(t.profiles) != KB_CONF_SEQ) {
		rc = cfail(ctx, t.profiles, "profiles must be a list");
		goto out;
	}
	c->profiles = calloc(n ? n : 1, sizeof(*c->profiles));
	if (c->profiles == NULL) {
		rc = kb_fail(ctx, KB_ENOMEM, "out of memory");
		goto out;
	}
	c->nprofiles = n ? n : 1;
	for (size_t i = 0; rc == 0 && i < c->nprofiles; i++) {
		rc = load_profile(ctx, n ? kb_conf_at(t.profiles, i) : NULL,
		    &c->profiles[i]);
		for (size_t j = 0; rc == 0 && j < i; j++)
			if (!strcmp(c->profiles[j].name, c->profiles[i].name))
				rc = cfail(ctx, kb_conf_at(t.profiles, i),
				    "two profiles with the same schedulerName");
	}
	if (rc == 0 && c->parallelism > 1 &&
	    (c->pool = sp_pool_new((int)c->parallelism)) == NULL)
		rc = kb_fail(ctx, KB_ENOMEM, "cannot start the workers");
	c->equivalence_cache = t.equivalence_cache;
	for (size_t i = 0; rc == 0 && i < c->nprofiles; i++) {
		c->profiles[i].pool = c->pool;
		c->profiles[i].eq_on = t.equivalence_cache;
	}
out:
	kb_conf_opts_free(top_opts, &t);
	if (rc)
		sp_config_free(ctx, c);
	return rc;
}

void sp_config_free(kb_ctx *ctx, struct sp_config *c)
{
	for (size_t i = 0; i < c->nprofiles; i++)
		profile_free(ctx, &c->profiles[i]);
	free(c->profiles);
	sp_pool_free(c->pool);
	c->pool = NULL;
	free(c->lease_name);
	free(c->lease_ns);
	c->lease_name = c->lease_ns = NULL;
	c->profiles = NULL;
	c->nprofiles = 0;
}

struct sp_profile *sp_profile_find(struct sp_config *c, const char *name)
{
	for (size_t i = 0; i < c->nprofiles; i++)
		if (!strcmp(c->profiles[i].name, name))
			return &c->profiles[i];
	return NULL;
}
