/* tests/scheduler/columns.c — the snapshot's columns (kubus/sched.h: the
 * nodes' numbers as arrays) and the policies' batch slots: the columns
 * follow pods added, removed and moved, and nodes replaced or freed; a
 * reason gets one bit; and the default profile on columns (batch
 * Filter/Score) places every pod where it places it node by node, and
 * words the same message when a pod fits nowhere — on nodes with taints
 * (hard and PreferNoSchedule), cordoned ones, small pod limits, ephemeral
 * storage, and pods with tolerations and node selectors. */
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

/* Node i: a mix of sizes, pod limits, taints and cordons. */
static struct kb_sched_node *node(int i)
{
	char name[32], cpu[16], mem[16], pods[16];
	snprintf(name, sizeof(name), "n-%04d", i);
	snprintf(cpu, sizeof(cpu), "%d", 1 + i % 4);
	snprintf(mem, sizeof(mem), "%dGi", 2 + (i * 7) % 9);
	snprintf(pods, sizeof(pods), "%d", i % 11 == 0 ? 2 : 110);
	const char *effect = i % 13 == 0 ? "NoSchedule" :
	    i % 17 == 0                  ? "PreferNoSchedule" :
	    i % 19 == 0                  ? "NoExecute" :
					   NULL;
	kb_body *b;
	if (effect)
		b = kb_mp_body("{s:{s:s, s:{s:s, s:s}}, s:{s:b, s:[{s:s, s:s, "
			       "s:s}]}, s:{s:{s:s, s:s, s:s, s:s}}}",
		    "metadata", "name", name, "labels",
		    "kubernetes.io/hostname", name, "zone", i % 3 ? "a" : "b",
		    "spec", "unschedulable", i % 23 == 0, "taints", "key",
		    i % 2 ? "dedicated" : "gpu", "value",
		    i % 2 ? "infra" : "yes", "effect", effect, "status",
		    "allocatable", "cpu", cpu, "memory", mem, "pods", pods,
		    "ephemeral-storage", i % 5 ? "10Gi" : "1Gi");
	else
		b = kb_mp_body("{s:{s:s, s:{s:s, s:s}}, s:{s:b}, "
			       "s:{s:{s:s, s:s, s:s, s:s}}}",
		    "metadata", "name", name, "labels",
		    "kubernetes.io/hostname", name, "zone", i % 3 ? "a" : "b",
		    "spec", "unschedulable", i % 23 == 0, "status",
		    "allocatable", "cpu", cpu, "memory", mem, "pods", pods,
		    "ephemeral-storage", i % 5 ? "10Gi" : "1Gi");
	struct kb_sched_node *n = kb_sched_node_new(kb_body_obj(b));
	kb_body_unref(b);
	return n;
}

/* Pod i: sizes from 50m to 1550m, some tolerate `dedicated`, some ask
 * for ephemeral storage, some select a zone, every 97th fits nowhere. */
static struct kb_sched_pod *pod(int i)
{
	char name[32], cpu[16], mem[16], eph[16];
	snprintf(name, sizeof(name), "p-%05d", i);
	snprintf(cpu, sizeof(cpu), "%dm",
	    i % 97 == 96 ? 64000 : 50 + (i * 37) % 1500);
	snprintf(mem, sizeof(mem), "%dMi", 64 + (i * 53) % 2000);
	snprintf(eph, sizeof(eph), "%dMi", i % 7 == 0 ? 900 : 0);
	kb_body *b;
	if (i % 5 == 0)
		b = kb_mp_body("{s:{s:s, s:s, s:{s:s}}, s:{s:[{s:s, s:s, "
			       "s:{s:{s:s, s:s, s:s}}}], s:[{s:s, s:s, s:s, "
			       "s:s}]}}",
		    "metadata", "name", name, "namespace", "d", "labels", "app",
		    "x", "spec", "containers", "name", "c", "image", "i",
		    "resources", "requests", "cpu", cpu, "memory", mem,
		    "ephemeral-storage", eph, "tolerations", "key", "dedicated",
		    "operator", "Equal", "value", "infra", "effect",
		    i % 10 ? "NoSchedule" : "PreferNoSchedule");
	else if (i % 9 == 0)
		b = kb_mp_body("{s:{s:s, s:s}, s:{s:[{s:s, s:s, s:{s:{s:s, "
			       "s:s}}}], s:{s:s}}}",
		    "metadata", "name", name, "namespace", "d", "spec",
		    "containers", "name", "c", "image", "i", "resources",
		    "requests", "cpu", cpu, "memory", mem, "nodeSelector",
		    "zone", "b");
	else
		b = kb_mp_body("{s:{s:s, s:s}, s:{s:[{s:s, s:s, s:{s:{s:s, "
			       "s:s, s:s}}}]}}",
		    "metadata", "name", name, "namespace", "d", "spec",
		    "containers", "name", "c", "image", "i", "resources",
		    "requests", "cpu", cpu, "memory", mem, "ephemeral-storage",
		    eph);
	struct kb_sched_pod *p = kb_sched_pod_new(kb_body_obj(b));
	kb_body_unref(b);
	return p;
}

static void assert_row(const struct kb_sched_columns *c, size_t r,
    const struct kb_sched_node *n)
{
	assert_ptr_equal(c->nodes[r], n);
	assert_int_equal(c->alloc_cpu[r], n->allocatable.milli_cpu);
	assert_int_equal(c->alloc_mem[r], n->allocatable.memory);
	assert_int_equal(c->alloc_eph[r], n->allocatable.ephemeral_storage);
	assert_int_equal(c->alloc_pods[r], n->allocatable.pods);
	assert_int_equal(c->req_cpu[r], n->requested.milli_cpu);
	assert_int_equal(c->req_mem[r], n->requested.memory);
	assert_int_equal(c->req_eph[r], n->requested.ephemeral_storage);
	assert_int_equal(c->npods[r], (int64_t)n->npods);
	assert_int_equal(c->nz_cpu[r], n->nonzero_requested.milli_cpu);
	assert_int_equal(c->nz_mem[r], n->nonzero_requested.memory);
}

static void test_columns_follow(void **state)
{
	enum {
		N = 40
	};
	struct kb_sched_node *nodes[N];
	for (int i = 0; i < N; i++)
		assert_non_null(nodes[i] = node(i));
	struct kb_sched_columns *c =
	    kb_sched_columns_new((const struct kb_sched_node *const *)nodes, N);
	assert_non_null(c);
	assert_int_equal(c->n, N);
	size_t cordoned = 0, hard = 0, prefer = 0;
	for (int i = 0; i < N; i++) {
		assert_row(c, (size_t)i, nodes[i]);
		cordoned += nodes[i]->unschedulable;
		hard += (c->flags[i] & KB_SCHED_NODE_HARD_TAINTS) != 0;
		prefer += (c->flags[i] & KB_SCHED_NODE_PREFER_TAINTS) != 0;
	}
	/* 0 and 23 cordoned; 0, 13, 26, 39 NoSchedule and 19, 38 NoExecute;
	 * 17, 34 PreferNoSchedule. */
	assert_int_equal(cordoned, 2);
	assert_int_equal(c->nflag[0], 2);
	assert_int_equal(hard, 6);
	assert_int_equal(c->nflag[1], 6);
	assert_int_equal(prefer, 2);
	assert_int_equal(c->nflag[2], 2);
	assert_true(c->flags[13] & KB_SCHED_NODE_HARD_TAINTS);
	assert_true(c->flags[17] & KB_SCHED_NODE_PREFER_TAINTS);

	/* Pods in and out. */
	struct kb_sched_pod *p1 = pod(1), *p2 = pod(7);
	assert_int_equal(kb_sched_node_add_pod(nodes[3], p1), 0);
	assert_int_equal(kb_sched_node_add_pod(nodes[3], p2), 0);
	assert_int_equal(c->npods[3], 2);
	assert_int_equal(c->req_cpu[3],
	    p1->requests.milli_cpu + p2->requests.milli_cpu);
	assert_int_equal(c->req_eph[3], p2->requests.ephemeral_storage);
	assert_row(c, 3, nodes[3]);
	assert_int_equal(kb_sched_node_remove_pod(nodes[3], "d", p1->name), 0);
	assert_row(c, 3, nodes[3]);
	assert_int_equal(c->npods[3], 1);

	/* A node replaced by a newer version (as the cache does). */
	struct kb_sched_node *nn = node(3);
	kb_sched_node_move_pods(nn, nodes[3]);
	assert_int_equal(c->npods[3], 0); /* the old one, now empty */
	kb_sched_columns_set(c, 3, nn);
	kb_sched_node_free(nodes[3]);
	nodes[3] = nn;
	assert_row(c, 3, nn);
	assert_int_equal(c->npods[3], 1);

	/* A freed node leaves its row empty and its flags uncounted. */
	kb_sched_node_free(nodes[13]);
	nodes[13] = NULL;
	assert_null(c->nodes[13]);
	assert_int_equal(c->nflag[1], 5);

	/* Columns freed: the nodes are on their own again. */
	kb_sched_columns_free(c);
	assert_int_equal(kb_sched_node_add_pod(nodes[4], p1), 0);
	assert_int_equal(nodes[4]->npods, 1);
	/* Attaching to new columns detaches from the old ones. */
	struct kb_sched_columns *a =
	    kb_sched_columns_new((const struct kb_sched_node *const *)nodes, 3);
	struct kb_sched_columns *b =
	    kb_sched_columns_new((const struct kb_sched_node *const *)nodes + 1,
		1);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(a->nodes[1]);
	assert_ptr_equal(b->nodes[0], nodes[1]);
	assert_int_equal(kb_sched_node_add_pod(nodes[1], p2), 0);
	assert_int_equal(b->npods[0], 1);
	assert_int_equal(a->npods[1], 0);
	kb_sched_columns_free(a);
	kb_sched_columns_free(b);
	kb_sched_pod_unref(p1);
	kb_sched_pod_unref(p2);
	for (int i = 0; i < N; i++)
		kb_sched_node_free(nodes[i]);
}

static void test_reason_bit(void **state)
{
	struct kb_sched_status *st = kb_sched_status_new();
	uint64_t a = kb_sched_reason_bit(st, KB_SCHED_UNSCHEDULABLE, "%s",
	    "Insufficient cpu");
	uint64_t b = kb_sched_reason_bit(st, KB_SCHED_UNRESOLVABLE,
	    "node(s) had untolerated taint {%s: %s}", "a", "b");
	assert_int_equal(a, 1);
	assert_int_equal(b, 2);
	assert_int_equal(kb_sched_reason_bit(st, KB_SCHED_UNSCHEDULABLE, "%s",
			     "Insufficient cpu"),
	    1);
	assert_int_equal(kb_sched_status_code(st), KB_SCHED_UNRESOLVABLE);
	assert_string_equal(kb_sched_status_reason(st, 1),
	    "node(s) had untolerated taint {a: b}");
	for (int i = 2; i < KB_SCHED_REASON_BITS; i++)
		assert_int_equal(kb_sched_reason_bit(st, KB_SCHED_UNSCHEDULABLE,
				     "reason %d", i),
		    1ULL << i);
	/* Full: the node goes to the per-node Filter. */
	assert_true(kb_sched_reason_bit(st, KB_SCHED_UNSCHEDULABLE,
			"one more") == KB_SCHED_ASK_NODE);
	assert_int_equal(kb_sched_status_nreasons(st), KB_SCHED_REASON_BITS);
	kb_sched_status_free(st);
}

static struct sp_config conf;

/* One world: its nodes, maybe columns, its random state. */
struct world {
	struct kb_sched_node *nodes[600];
	size_t n;
	struct kb_sched_columns *cols;
	struct kb_sched_snapshot snap;
	uint64_t rng;
};

static void world_init(struct world *w, size_t n, bool columns)
{
	w->n = n;
	for (size_t i = 0; i < n; i++)
		assert_non_null(w->nodes[i] = node((int)i));
	w->cols = columns ?
	    kb_sched_columns_new((const struct kb_sched_node *const *)w->nodes,
		n) :
	    NULL;
	w->snap = (struct kb_sched_snapshot){ .size = sizeof(w->snap),
		.nodes = (const struct kb_sched_node *const *)w->nodes,
		.nnodes = n,
		.totals = true,
		.cols = w->cols };
	w->rng = 7;
}

static void world_free(struct world *w)
{
	kb_sched_columns_free(w->cols);
	for (size_t i = 0; i < w->n; i++)
		kb_sched_node_free(w->nodes[i]);
}

static void test_same_placements(void **state)
{
	static struct world a, b;
	char err[256];
	/* Without the equivalence cache: the full pass, per node and batch
	 * (sched_eqcache compares the cache with it). */
	const char *yaml = "parallelism: 3\nequivalenceCache: false\n";
	kb_conf *cf =
	    kb_conf_parse_yaml(yaml, strlen(yaml), "t.yaml", err, sizeof(err));
	assert_non_null(cf);
	assert_int_equal(sp_config_load(ctx, cf, &conf), 0);
	kb_conf_free(cf);
	struct sp_profile *prof = &conf.profiles[0];
	/* 600 nodes: more than one chunk per thread. */
	world_init(&a, 600, false);
	world_init(&b, 600, true);
	int placed = 0, failed = 0, saw_taint = 0, saw_pods = 0;
	for (int i = 0; i < 1500; i++) {
		struct kb_sched_pod *p = pod(i);
		assert_non_null(p);
		struct sp_outcome oa, ob;
		int ra = sp_cycle_run(prof, &a.snap, p, &a.rng, &oa);
		int rb = sp_cycle_run(prof, &b.snap, p, &b.rng, &ob);
		assert_int_equal(ra, rb);
		if (ra == KB_SCHED_SUCCESS) {
			if (strcmp(oa.node, ob.node))
				fail_msg("pod %d: %s node by node, %s on columns",
				    i, oa.node, ob.node);
			int k = atoi(oa.node + 2);
			assert_int_equal(kb_sched_node_add_pod(a.nodes[k], p),
			    0);
			assert_int_equal(kb_sched_node_add_pod(b.nodes[k], p),
			    0);
			assert_row(b.cols, (size_t)k, b.nodes[k]);
			placed++;
		} else {
			assert_non_null(oa.message);
			assert_non_null(ob.message);
			assert_string_equal(oa.message, ob.message);
			saw_taint += strstr(oa.message, "untolerated taint") !=
			    NULL;
			saw_pods += strstr(oa.message, "Too many pods") != NULL;
			failed++;
		}
		sp_outcome_clear(&oa);
		sp_outcome_clear(&ob);
		kb_sched_pod_unref(p);
	}
	fprintf(stderr, "columns: %d placed, %d unschedulable, alike\n", placed,
	    failed);
	/* Both paths were exercised: placements, and messages with the
	 * reasons of batch (pods, cpu) and per-node (taints) filters. */
	assert_true(placed > 1000);
	assert_true(failed >= 15);
	assert_true(saw_taint > 0);
	assert_true(saw_pods > 0);
	/* LeastAllocated, as kube-scheduler computes it in integers, on the
	 * filled nodes, per node and from the columns (whose divisions go
	 * through doubles). */
	const struct sp_policy *nr = NULL;
	for (size_t i = 0; i < prof->npolicies; i++)
		if (!strcmp(prof->policies[i]->name, "sched-noderesources"))
			nr = prof->policies[i];
	assert_non_null(nr);
	assert_true(KB_SCHED_HAS(nr->ops, score_nodes));
	static uint32_t rows[600];
	static int64_t got[600];
	for (int k = 0; k < 40; k++) {
		struct kb_sched_pod *p = pod(k * 31);
		struct kb_sched_cycle *cy = kb_sched_cycle_new(&b.snap);
		for (size_t i = 0; i < b.n; i++)
			rows[i] = (uint32_t)i;
		assert_int_equal(nr->ops->score_nodes(nr->state, cy, p, b.cols,
				     rows, b.n, got, NULL),
		    0);
		for (size_t i = 0; i < b.n; i++) {
			const struct kb_sched_node *n = b.nodes[i];
			int64_t cc = n->allocatable.milli_cpu,
				cm = n->allocatable.memory;
			int64_t rc = n->nonzero_requested.milli_cpu +
			    p->nonzero_requests.milli_cpu;
			int64_t rm = n->nonzero_requested.memory +
			    p->nonzero_requests.memory;
			int64_t want =
			    ((rc > cc ? 0 : (cc - rc) * 100 / cc) +
				(rm > cm ? 0 : (cm - rm) * 100 / cm)) /
			    2;
			int64_t one = -1;
			nr->ops->score(nr->state, cy, p, n, &one, NULL);
			if (one != want || got[i] != want)
				fail_msg("node %zu: LeastAllocated %lld per node, "
					 "%lld from columns, want %lld",
				    i, (long long)one, (long long)got[i],
				    (long long)want);
		}
		kb_sched_cycle_free(cy);
		kb_sched_pod_unref(p);
	}
	world_free(&a);
	world_free(&b);
	sp_config_free(ctx, &conf);
}

/* --- a node's pods, found by namespace and name ------------------------------------ */

/* Pod k of the churn: names shared across namespaces, and namespace/name
 * pairs that read the same run together ("a"+"bc", "ab"+"c"). */
static struct kb_sched_pod *churn_pod(int k, int version)
{
	static const char *const ns[] = { "a", "ab", "b" };
	char name[32], cpu[16];
	snprintf(name, sizeof(name), k % 3 == 0 ? "bc%d" : "c%d", k / 3);
	snprintf(cpu, sizeof(cpu), "%dm", 1 + k * 3 + version);
	kb_body *b = kb_mp_body("{s:{s:s, s:s}, s:{s:[{s:s, s:s, "
				"s:{s:{s:s}}}]}}",
	    "metadata", "name", name, "namespace", ns[k % 3], "spec",
	    "containers", "name", "c", "image", "i", "resources", "requests",
	    "cpu", cpu);
	struct kb_sched_pod *p = kb_sched_pod_new(kb_body_obj(b));
	kb_body_unref(b);
	return p;
}

#define CHURN_PODS 600
#define CHURN_NODES 7

/* Each node holds exactly the pods `at` puts there, in cpu too. */
static void check_nodes(struct kb_sched_node *const *nodes,
    struct kb_sched_pod *const *pods, const int *at)
{
	for (int n = 0; n < CHURN_NODES; n++) {
		size_t want = 0;
		int64_t cpu = 0;
		for (int k = 0; k < CHURN_PODS; k++) {
			if (at[k] != n)
				continue;
			want++;
			cpu += pods[k]->requests.milli_cpu;
			size_t i = 0;
			while (i < nodes[n]->npods && nodes[n]->pods[i] != pods[k])
				i++;
			assert_true(i < nodes[n]->npods);
		}
		assert_int_equal(nodes[n]->npods, want);
		assert_int_equal(nodes[n]->requested.milli_cpu, cpu);
	}
}

/* Many pods added, updated in place, moved between nodes, taken off in
 * varied order, with nodes replaced meanwhile: a node always finds the
 * pod asked for, and only that one. */
static void test_node_pods_churn(void **state)
{
	(void)state;
	struct kb_sched_node *nodes[CHURN_NODES];
	struct kb_sched_pod *pods[CHURN_PODS];
	int at[CHURN_PODS], version[CHURN_PODS];
	for (int n = 0; n < CHURN_NODES; n++)
		assert_non_null(nodes[n] = node(n + 1));
	for (int k = 0; k < CHURN_PODS; k++) {
		assert_non_null(pods[k] = churn_pod(k, 0));
		at[k] = -1;
		version[k] = 0;
	}
	uint32_t r = 12345;
	for (int step = 0; step < 20000; step++) {
		r = r * 1103515245u + 12345u;
		int k = (int)((r >> 8) % CHURN_PODS);
		int to = (int)((r >> 20) % (CHURN_NODES + 1)) - 1;
		const struct kb_sched_pod *p = pods[k];
		if (at[k] >= 0) {
			assert_int_equal(kb_sched_node_remove_pod(nodes[at[k]],
					     p->ns, p->name),
			    0);
			assert_int_equal(kb_sched_node_remove_pod(nodes[at[k]],
					     p->ns, p->name),
			    KB_ENOTFOUND);
		} else if (to >= 0) {
			assert_int_equal(kb_sched_node_remove_pod(nodes[to],
					     p->ns, p->name),
			    KB_ENOTFOUND);
		}
		/* an update: a new object of the same pod */
		kb_sched_pod_unref(pods[k]);
		assert_non_null(pods[k] = churn_pod(k, ++version[k]));
		at[k] = to;
		if (to >= 0)
			assert_int_equal(kb_sched_node_add_pod(nodes[to],
					     pods[k]),
			    0);
		if (step % 1000 == 999) {
			/* a node object replaced by a newer one */
			int n = (int)((r >> 4) % CHURN_NODES);
			struct kb_sched_node *nn = node(n + 1);
			assert_non_null(nn);
			kb_sched_node_move_pods(nn, nodes[n]);
			kb_sched_node_free(nodes[n]);
			nodes[n] = nn;
			check_nodes(nodes, pods, at);
		}
	}
	check_nodes(nodes, pods, at);
	/* everything off, in an order of its own */
	for (int i = 0; i < CHURN_PODS; i++) {
		int k = (i * 7919) % CHURN_PODS;
		if (at[k] < 0)
			continue;
		assert_int_equal(kb_sched_node_remove_pod(nodes[at[k]],
				     pods[k]->ns, pods[k]->name),
		    0);
		at[k] = -1;
	}
	check_nodes(nodes, pods, at);
	for (int k = 0; k < CHURN_PODS; k++)
		kb_sched_pod_unref(pods[k]);
	for (int n = 0; n < CHURN_NODES; n++)
		kb_sched_node_free(nodes[n]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_columns_follow),
		cmocka_unit_test(test_reason_bit),
		cmocka_unit_test(test_same_placements),
		cmocka_unit_test(test_node_pods_churn),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
