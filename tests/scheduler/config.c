/* tests/scheduler/config.c — how profiles are composed (plugins/scheduler/
 * config.c, loaded in a real host so that policies come from the plugin
 * path): kube-scheduler's default plugins, order and weights;
 * multiPoint; per-point enabled/disabled lists with `*`; weights;
 * parallelism. And the cycle (cycle.c) with policies defined here: reasons
 * counted across the worker chunks, errors from Filter and from a score out
 * of range, weights summed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "sched_host.h"
#include "scheduler.h"

static void load(const char *yaml, struct sp_config *c)
{
	char err[512];
	kb_conf *cf =
	    kb_conf_parse_yaml(yaml, strlen(yaml), "t.yaml", err, sizeof(err));
	if (cf == NULL)
		fail_msg("yaml: %s", err);
	int rc = sp_config_load(ctx, cf, c);
	kb_conf_free(cf);
	assert_int_equal(rc, 0);
}

/* "name:weight name:weight …" of a point. */
static const char *point(const struct sp_profile *p, int pt)
{
	static char buf[1024];
	buf[0] = '\0';
	for (size_t i = 0; i < p->npoints[pt]; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
		    "%s%s:%lld", i ? " " : "", p->points[pt][i].p->name + 6,
		    (long long)p->points[pt][i].weight);
	return buf;
}

static void test_defaults(void **state)
{
	struct sp_config c;
	load("parallelism: 3\n", &c);
	assert_int_equal(c.nprofiles, 1);
	const struct sp_profile *p = &c.profiles[0];
	assert_string_equal(p->name, "default-scheduler");
	/* kube-scheduler's filters in its order (the first to reject a node
	 * gives the reason counted for it). */
	assert_string_equal(point(p, P_FILTER),
	    "nodeunschedulable:1 nodename:1 tainttoleration:3 nodeaffinity:2 "
	    "nodeports:1 noderesources:1 podtopologyspread:2 "
	    "interpodaffinity:2");
	/* Its scores and weights: TaintToleration 3, NodeAffinity 2,
	 * NodeResourcesFit 1, PodTopologySpread 2, InterPodAffinity 2,
	 * BalancedAllocation 1. */
	assert_string_equal(point(p, P_SCORE),
	    "tainttoleration:3 nodeaffinity:2 noderesources:1 "
	    "podtopologyspread:2 interpodaffinity:2 balancedallocation:1");
	assert_string_equal(point(p, P_PRESCORE),
	    "tainttoleration:3 nodeaffinity:2 podtopologyspread:2 "
	    "interpodaffinity:2 balancedallocation:1");
	assert_int_equal(sp_pool_parts(c.pool), 3);
	sp_config_free(ctx, &c);
}

static void test_enabled_disabled(void **state)
{
	struct sp_config c;
	load("profiles:\n"
	     "  - schedulerName: a\n"
	     "    plugins:\n"
	     "      filter: {disabled: [{name: \"*\"}], enabled: [{name: sched-nodename}]}\n"
	     "      score:\n"
	     "        disabled: [{name: sched-tainttoleration}, {name: sched-interpodaffinity}]\n"
	     "        enabled: [{name: sched-noderesources, weight: 5}]\n"
	     "  - schedulerName: b\n"
	     "    plugins:\n"
	     "      multiPoint: {disabled: [{name: \"*\"}], enabled: [{name: sched-balancedallocation, weight: 7}]}\n",
	    &c);
	assert_int_equal(c.nprofiles, 2);
	const struct sp_profile *a = sp_profile_find(&c, "a");
	const struct sp_profile *b = sp_profile_find(&c, "b");
	assert_non_null(a);
	assert_non_null(b);
	assert_null(sp_profile_find(&c, "default-scheduler"));
	assert_string_equal(point(a, P_FILTER), "nodename:1");
	/* PreFilter is its own point: still the defaults there. */
	assert_non_null(strstr(point(a, P_PREFILTER), "podtopologyspread"));
	assert_string_equal(point(a, P_SCORE),
	    "nodeaffinity:2 noderesources:5 podtopologyspread:2 "
	    "balancedallocation:1");
	assert_string_equal(point(b, P_FILTER), "");
	assert_string_equal(point(b, P_SCORE), "balancedallocation:7");
	assert_string_equal(point(b, P_PRESCORE), "balancedallocation:7");
	sp_config_free(ctx, &c);
}

static void test_bad(void **state)
{
	struct sp_config c;
	char err[512];
	const char *yaml = "parallelism: 65\n";
	kb_conf *cf =
	    kb_conf_parse_yaml(yaml, strlen(yaml), "t.yaml", err, sizeof(err));
	assert_int_not_equal(sp_config_load(ctx, cf, &c), 0);
	kb_conf_free(cf);
	yaml = "profiles:\n  - plugins: {filter: {enabled: [{name: \"*\"}]}}\n";
	cf = kb_conf_parse_yaml(yaml, strlen(yaml), "t.yaml", err, sizeof(err));
	assert_int_not_equal(sp_config_load(ctx, cf, &c), 0);
	kb_conf_free(cf);
}

/* --- the cycle with hand-made policies ------------------------------------------------ */

/* Rejects nodes whose name ends in 0 (as unschedulable) or 7 (unresolvable,
 * with two reasons); errs on "node-err". */
static int t_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	size_t n = strlen(node->name);
	if (!strcmp(node->name, "node-err"))
		return kb_sched_reject(st, KB_SCHED_ERROR, "broken");
	if (node->name[n - 1] == '0')
		return kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE, "ends in 0");
	if (node->name[n - 1] == '7') {
		kb_sched_reject(st, KB_SCHED_UNRESOLVABLE, "ends in 7");
		return kb_sched_reject(st, KB_SCHED_UNRESOLVABLE, "is odd");
	}
	return KB_SCHED_SUCCESS;
}

/* s: 100 on node-523, 0 elsewhere; 101 on node-big (out of range). */
static int t_score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	*out = !strcmp(node->name, "node-big") ? 101 :
	    !strcmp(node->name, "node-523")    ? 100 :
						 0;
	return KB_SCHED_SUCCESS;
}

/* n: raw 0 on node-042, 50 elsewhere; normalized to 100 - raw. */
static int t_score_n(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	*out = !strcmp(node->name, "node-042") ? 0 : 50;
	return KB_SCHED_SUCCESS;
}

static int t_normalize(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, struct kb_sched_node_score *s, size_t n,
    struct kb_sched_status *st)
{
	for (size_t i = 0; i < n; i++)
		s[i].score = 100 - s[i].score;
	return KB_SCHED_SUCCESS;
}

static const struct kb_sched_policy_ops f_ops = {
	.size = sizeof(struct kb_sched_policy_ops),
	.filter = t_filter,
};
static const struct kb_sched_policy_ops s_ops = {
	.size = sizeof(struct kb_sched_policy_ops),
	.score = t_score,
};
static const struct kb_sched_policy_ops n_ops = {
	.size = sizeof(struct kb_sched_policy_ops),
	.score = t_score_n,
	.normalize_score = t_normalize,
};

static struct kb_sched_node *mknode(const char *name)
{
	kb_body *b = kb_mp_body("{s:{s:s}}", "metadata", "name", name);
	struct kb_sched_node *n = kb_sched_node_new(kb_body_obj(b));
	kb_body_unref(b);
	return n;
}

/* Nodes node-000..node-599 (+ extra), by name; a cycle with 1 or 3
 * threads; the outcome. */
static int run_cycle(int threads, int64_t w_plain, int64_t w_norm,
    const char *extra, struct sp_outcome *out)
{
	enum {
		N = 600
	};
	struct kb_sched_node *nodes[N + 1];
	char name[32];
	size_t n = 0;
	if (extra)
		nodes[n++] = mknode(extra); /* first: order does not matter */
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "node-%03d", i);
		nodes[n++] = mknode(name);
	}
	struct sp_policy fp = { .name = "f", .ops = &f_ops },
			 sp = { .name = "s", .ops = &s_ops },
			 np = { .name = "n", .ops = &n_ops };
	struct sp_slot fslots[] = { { &fp, 1 } };
	struct sp_slot sslots[] = { { &sp, w_plain }, { &np, w_norm } };
	struct sp_profile prof = { .name = "t" };
	prof.points[P_FILTER] = fslots;
	prof.npoints[P_FILTER] = 1;
	prof.points[P_SCORE] = sslots;
	prof.npoints[P_SCORE] = 2;
	prof.pool = threads > 1 ? sp_pool_new(threads) : NULL;
	struct kb_sched_snapshot snap = { .size = sizeof(snap),
		.nodes = (const struct kb_sched_node *const *)nodes,
		.nnodes = n };
	kb_body *pb = kb_mp_body("{s:{s:s, s:s}}", "metadata", "name", "p",
	    "namespace", "d");
	struct kb_sched_pod *pod = kb_sched_pod_new(kb_body_obj(pb));
	kb_body_unref(pb);
	uint64_t rng = 1;
	int rc = sp_cycle_run(&prof, &snap, pod, &rng, out);
	kb_sched_pod_unref(pod);
	sp_scratch_free(prof.scratch);
	sp_pool_free(prof.pool);
	for (size_t i = 0; i < n; i++)
		kb_sched_node_free(nodes[i]);
	return rc;
}

static void test_cycle(void **state)
{
	for (int threads = 1; threads <= 3; threads += 2) {
		struct sp_outcome out;
		/* s weight 1, n weight 3: node-523 100 + 150, node-042
		 * 0 + 300, the rest 150: node-042 (in the first chunk). */
		assert_int_equal(run_cycle(threads, 1, 3, NULL, &out),
		    KB_SCHED_SUCCESS);
		assert_string_equal(out.node, "node-042");
		sp_outcome_clear(&out);
		/* s weight 3, n weight 1: node-523 300 + 50 wins (a later
		 * chunk). */
		assert_int_equal(run_cycle(threads, 3, 1, NULL, &out),
		    KB_SCHED_SUCCESS);
		assert_string_equal(out.node, "node-523");
		sp_outcome_clear(&out);
		/* A Filter error ends the cycle, named. */
		assert_int_equal(run_cycle(threads, 1, 1, "node-err", &out),
		    KB_SCHED_ERROR);
		assert_string_equal(out.message, "running Filter f: broken");
		sp_outcome_clear(&out);
		/* A score out of range without NormalizeScore: an error. */
		assert_int_equal(run_cycle(threads, 1, 1, "node-big", &out),
		    KB_SCHED_ERROR);
		assert_non_null(strstr(out.message,
		    "running Score s: score 101 of node node-big is outside [0, 100]"));
		sp_outcome_clear(&out);
	}
}

/* Every node rejected: the reasons counted across chunks. */
static int r_filter(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	int r = t_filter(state, cy, pod, node, st);
	return r == KB_SCHED_SUCCESS ?
	    kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE, "Insufficient cpu") :
	    r;
}

static void test_cycle_reasons(void **state)
{
	static const struct kb_sched_policy_ops r_ops = {
		.size = sizeof(struct kb_sched_policy_ops),
		.filter = r_filter,
	};
	enum {
		N = 1000
	};
	struct kb_sched_node *nodes[N];
	char name[32];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "node-%03d", i);
		nodes[i] = mknode(name);
	}
	for (int threads = 1; threads <= 4; threads += 3) {
		struct sp_policy rp = { .name = "r", .ops = &r_ops };
		struct sp_slot slots[] = { { &rp, 1 } };
		struct sp_profile prof = { .name = "t" };
		prof.points[P_FILTER] = slots;
		prof.npoints[P_FILTER] = 1;
		prof.pool = threads > 1 ? sp_pool_new(threads) : NULL;
		struct kb_sched_snapshot snap = { .size = sizeof(snap),
			.nodes = (const struct kb_sched_node *const *)nodes,
			.nnodes = N };
		kb_body *pb = kb_mp_body("{s:{s:s}}", "metadata", "name", "p");
		struct kb_sched_pod *pod = kb_sched_pod_new(kb_body_obj(pb));
		kb_body_unref(pb);
		struct sp_outcome out;
		uint64_t rng = 1;
		/* 100 end in 0, 100 in 7 (two reasons each), 800 others. */
		assert_int_equal(sp_cycle_run(&prof, &snap, pod, &rng, &out),
		    KB_SCHED_UNSCHEDULABLE);
		assert_string_equal(out.message,
		    "0/1000 nodes are available: 100 ends in 0, 100 ends in 7, "
		    "100 is odd, 800 Insufficient cpu.");
		sp_outcome_clear(&out);
		kb_sched_pod_unref(pod);
		sp_scratch_free(prof.scratch);
		sp_pool_free(prof.pool);
	}
	for (int i = 0; i < N; i++)
		kb_sched_node_free(nodes[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_enabled_disabled),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_cycle_reasons),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
