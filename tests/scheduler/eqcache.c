/* tests/scheduler/eqcache.c — the equivalence cache (plugins/scheduler/
 * eqcache.c and its use in cycle.c) makes the decisions and words the
 * messages a full pass does. Three worlds get the same pods in the same
 * order: the default profile without the cache node by node (the
 * reference), with the cache on columns with 3 threads, and with the
 * cache node by node with 1 thread. Between pods the worlds change alike:
 * pods taken off nodes, nodes replaced by new versions (taints added and
 * removed, cordoned, relabelled), nodes added and deleted (the snapshot's
 * rows reshaped). Pods come in interleaved classes: plain ones, ones that
 * tolerate a taint, select a zone, prefer a zone (a NormalizeScore policy
 * active) with a host port, fit nowhere (the message from cached
 * verdicts), one-off pods (a class each: never cached, never evicting
 * the others), and some that are not node-local (topology spread, pod
 * anti-affinity, which also turns every other pod non-node-local while
 * it is placed). Also: node generations move with every change, the
 * policies say node-local when they should, a policy without the slot
 * keeps its profile on the full pass, and the tie-breaks' divisibility
 * test agrees with %. */
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

/* Node `id`, version `v`: sizes, zones, taints and cordons vary with
 * both. */
static struct kb_sched_node *node(int id, int v)
{
	char name[32], cpu[16], mem[16], pods[16], zone[4];
	snprintf(name, sizeof(name), "n-%04d", id);
	snprintf(cpu, sizeof(cpu), "%d", 2 + id % 3);
	snprintf(mem, sizeof(mem), "%dGi", 4 + (id * 7) % 9);
	snprintf(pods, sizeof(pods), "%d", id % 29 == 0 ? 3 : 110);
	snprintf(zone, sizeof(zone), "%c", "abc"[(id + v) % 3]);
	int k = (id * 5 + v * 3) % 31;
	const char *effect = k == 0 ? "NoSchedule" :
	    k < 3                   ? "PreferNoSchedule" :
	    k == 3                  ? "NoExecute" :
				      NULL;
	bool cordon = (id + v) % 37 == 0;
	kb_body *b;
	if (effect)
		b = kb_mp_body("{s:{s:s, s:{s:s, s:s}}, s:{s:b, s:[{s:s, s:s, "
			       "s:s}]}, s:{s:{s:s, s:s, s:s}}}",
		    "metadata", "name", name, "labels",
		    "kubernetes.io/hostname", name, "zone", zone, "spec",
		    "unschedulable", cordon, "taints", "key",
		    k % 2 ? "dedicated" : "gpu", "value",
		    k % 2 ? "infra" : "yes", "effect", effect, "status",
		    "allocatable", "cpu", cpu, "memory", mem, "pods", pods);
	else
		b = kb_mp_body("{s:{s:s, s:{s:s, s:s}}, s:{s:b}, "
			       "s:{s:{s:s, s:s, s:s}}}",
		    "metadata", "name", name, "labels",
		    "kubernetes.io/hostname", name, "zone", zone, "spec",
		    "unschedulable", cordon, "status", "allocatable", "cpu",
		    cpu, "memory", mem, "pods", pods);
	struct kb_sched_node *n = kb_sched_node_new(kb_body_obj(b));
	kb_body_unref(b);
	return n;
}

enum {
	C_WEB,
	C_TOLERATE,
	C_ZONE,
	C_PREFER,
	C_HUGE,
	C_SPREAD,
	C_ANTI,
	C_ONEOFF /* a class of its own */
};

static int class_of(int i)
{
	switch (i % 9) {
	case 3:
		return C_TOLERATE;
	case 4:
		return C_ZONE;
	case 5:
		return C_PREFER;
	case 6:
		return i % 4 == 2 ? C_HUGE : C_WEB;
	case 7:
		return i / 9 % 3 == 0 ? C_SPREAD :
		    i / 9 % 3 == 1    ? C_ANTI :
					C_WEB;
	case 8:
		return i % 2 ? C_WEB : C_ONEOFF;
	default:
		return C_WEB;
	}
}

static struct kb_sched_pod *pod(int i)
{
	char name[32];
	snprintf(name, sizeof(name), "p-%05d", i);
	kb_body *b = NULL;
	switch (class_of(i)) {
	case C_WEB:
		b = kb_mp_body("{s:{s:s, s:s, s:{s:s}}, s:{s:[{s:s, s:s, "
			       "s:{s:{s:s, s:s}}}]}}",
		    "metadata", "name", name, "namespace", "d", "labels", "app",
		    "web", "spec", "containers", "name", "c", "image", "i",
		    "resources", "requests", "cpu", "300m", "memory", "512Mi");
		break;
	case C_TOLERATE:
		b = kb_mp_body("{s:{s:s, s:s}, s:{s:[{s:s, s:s, s:{s:{s:s, "
			       "s:s}}}], s:[{s:s, s:s, s:s}]}}",
		    "metadata", "name", name, "namespace", "d", "spec",
		    "containers", "name", "c", "image", "i", "resources",
		    "requests", "cpu", "1", "memory", "2Gi", "tolerations",
		    "key", "dedicated", "operator", "Exists", "effect",
		    "NoSchedule");
		break;
	case C_ZONE:
		b = kb_mp_body("{s:{s:s, s:s}, s:{s:[{s:s, s:s, s:{s:{s:s, "
			       "s:s}}}], s:{s:s}}}",
		    "metadata", "name", name, "namespace", "d", "spec",
		    "containers", "name", "c", "image", "i", "resources",
		    "requests", "cpu", "500m", "memory", "1Gi", "nodeSelector",
		    "zone", "b");
		break;
	case C_PREFER:
		b = kb_mp_body("{s:{s:s, s:s}, s:{s:[{s:s, s:s, s:[{s:i, "
			       "s:i}], s:{s:{s:s}}}], s:{s:{s:[{s:i, s:{s:[{s:s, "
			       "s:s, s:[s]}]}}]}}}}",
		    "metadata", "name", name, "namespace", "d", "spec",
		    "containers", "name", "c", "image", "i", "ports",
		    "containerPort", 80, "hostPort", 8080, "resources",
		    "requests", "cpu", "200m", "affinity", "nodeAffinity",
		    "preferredDuringSchedulingIgnoredDuringExecution", "weight",
		    50, "preference", "matchExpressions", "key", "zone",
		    "operator", "In", "values", "a");
		break;
	case C_ONEOFF:
		b = kb_mp_body("{s:{s:s, s:s, s:{s:s}}, s:{s:[{s:s, s:s, "
			       "s:{s:{s:s}}}]}}",
		    "metadata", "name", name, "namespace", "d", "labels", "app",
		    name, "spec", "containers", "name", "c", "image", "i",
		    "resources", "requests", "cpu", "250m");
		break;
	case C_HUGE:
		b = kb_mp_body("{s:{s:s, s:s}, s:{s:[{s:s, s:s, s:{s:{s:s}}}]}}",
		    "metadata", "name", name, "namespace", "d", "spec",
		    "containers", "name", "c", "image", "i", "resources",
		    "requests", "cpu", "64");
		break;
	case C_SPREAD:
		b = kb_mp_body("{s:{s:s, s:s, s:{s:s}}, s:{s:[{s:s, s:s, "
			       "s:{s:{s:s}}}], s:[{s:i, s:s, s:s, "
			       "s:{s:{s:s}}}]}}",
		    "metadata", "name", name, "namespace", "d", "labels", "app",
		    "web", "spec", "containers", "name", "c", "image", "i",
		    "resources", "requests", "cpu", "300m",
		    "topologySpreadConstraints", "maxSkew", 1, "topologyKey",
		    "zone", "whenUnsatisfiable",
		    i % 2 ? "DoNotSchedule" : "ScheduleAnyway", "labelSelector",
		    "matchLabels", "app", "web");
		break;
	case C_ANTI:
		b = kb_mp_body("{s:{s:s, s:s, s:{s:s}}, s:{s:[{s:s, s:s, "
			       "s:{s:{s:s}}}], s:{s:{s:[{s:{s:{s:s}}, "
			       "s:s}]}}}}",
		    "metadata", "name", name, "namespace", "d", "labels", "app",
		    "lonely", "spec", "containers", "name", "c", "image", "i",
		    "resources", "requests", "cpu", "100m", "affinity",
		    "podAntiAffinity",
		    "requiredDuringSchedulingIgnoredDuringExecution",
		    "labelSelector", "matchLabels", "app", "web", "topologyKey",
		    "kubernetes.io/hostname");
		break;
	}
	struct kb_sched_pod *p = b ? kb_sched_pod_new(kb_body_obj(b)) : NULL;
	kb_body_unref(b);
	return p;
}

#define MAXN 700

struct world {
	struct sp_config conf;
	struct kb_sched_node *nodes[MAXN];
	size_t n;
	bool columns;
	struct kb_sched_columns *cols;
	struct kb_sched_snapshot snap;
	uint64_t rng;
};

static void world_snap(struct world *w)
{
	if (w->columns) {
		kb_sched_columns_free(w->cols);
		w->cols =
		    kb_sched_columns_new((const struct kb_sched_node *const *)
					     w->nodes,
			w->n);
		assert_non_null(w->cols);
	}
	w->snap.nnodes = w->n;
}

static void world_totals(struct world *w)
{
	w->snap.naffinity_pods = w->snap.nanti_pods = 0;
	for (size_t i = 0; i < w->n; i++) {
		w->snap.naffinity_pods += w->nodes[i]->naffinity_pods;
		w->snap.nanti_pods += w->nodes[i]->nanti_pods;
	}
	w->snap.cols = w->cols;
}

static void world_init(struct world *w, const char *yaml, bool columns)
{
	char err[256];
	kb_conf *cf =
	    kb_conf_parse_yaml(yaml, strlen(yaml), "t.yaml", err, sizeof(err));
	assert_non_null(cf);
	assert_int_equal(sp_config_load(ctx, cf, &w->conf), 0);
	kb_conf_free(cf);
	w->n = 600;
	for (size_t i = 0; i < w->n; i++)
		assert_non_null(w->nodes[i] = node((int)i, 0));
	w->columns = columns;
	w->snap = (struct kb_sched_snapshot){ .size = sizeof(w->snap),
		.nodes = (const struct kb_sched_node *const *)w->nodes,
		.totals = true };
	world_snap(w);
	world_totals(w);
	w->rng = 7;
}

static void world_free(struct world *w)
{
	kb_sched_columns_free(w->cols);
	for (size_t i = 0; i < w->n; i++)
		kb_sched_node_free(w->nodes[i]);
	sp_config_free(ctx, &w->conf);
}

/* Node k replaced by its version v (pods moved over). */
static void world_replace(struct world *w, size_t k, int v)
{
	struct kb_sched_node *nn = node(atoi(w->nodes[k]->name + 2), v);
	assert_non_null(nn);
	uint64_t g = w->nodes[k]->generation;
	kb_sched_node_move_pods(nn, w->nodes[k]);
	assert_true(nn->generation > g);
	kb_sched_node_free(w->nodes[k]);
	w->nodes[k] = nn;
	kb_sched_columns_set(w->cols, k, nn);
}

/* Node k deleted with its pods; the rows after it move up. */
static void world_delete(struct world *w, size_t k)
{
	kb_sched_node_free(w->nodes[k]);
	memmove(&w->nodes[k], &w->nodes[k + 1],
	    (w->n - k - 1) * sizeof(w->nodes[0]));
	w->n--;
	world_snap(w);
}

static void world_add(struct world *w, int id)
{
	assert_true(w->n < MAXN);
	assert_non_null(w->nodes[w->n] = node(id, 0));
	w->n++;
	world_snap(w);
}

static size_t find(const struct world *w, const char *name)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->nodes[i]->name, name))
			return i;
	fail_msg("no node %s", name);
	return 0;
}

struct placed {
	struct kb_sched_pod *pod;
	char node[256];
	int at; /* the pod's number */
};

static void test_same_decisions(void **state)
{
	static struct world w[3];
	world_init(&w[0], "parallelism: 1\nequivalenceCache: false\n", false);
	world_init(&w[1], "parallelism: 3\nequivalenceCache: true\n", true);
	world_init(&w[2], "parallelism: 1\nequivalenceCache: true\n", false);
	static struct placed pl[4000];
	size_t npl = 0;
	int placed = 0, failed = 0, cached_msgs = 0, version = 1;
	int next_id = 600;
	const int npods = 3000;
	for (int i = 0; i < npods; i++) {
		struct kb_sched_pod *p = pod(i);
		assert_non_null(p);
		struct sp_outcome o[3];
		int r[3];
		for (int k = 0; k < 3; k++)
			r[k] = sp_cycle_run(&w[k].conf.profiles[0], &w[k].snap,
			    p, &w[k].rng, &o[k]);
		for (int k = 1; k < 3; k++) {
			if (r[k] != r[0])
				fail_msg("pod %d: code %d without the cache, "
					 "%d in world %d",
				    i, r[0], r[k], k);
			if (r[0] == KB_SCHED_SUCCESS &&
			    strcmp(o[0].node, o[k].node))
				fail_msg("pod %d: %s without the cache, %s in "
					 "world %d",
				    i, o[0].node, o[k].node, k);
			if (r[0] != KB_SCHED_SUCCESS &&
			    strcmp(o[0].message, o[k].message))
				fail_msg("pod %d: \"%s\" without the cache, "
					 "\"%s\" in world %d",
				    i, o[0].message, o[k].message, k);
		}
		if (r[0] == KB_SCHED_SUCCESS) {
			for (int k = 0; k < 3; k++) {
				struct kb_sched_node *nd =
				    w[k].nodes[find(&w[k], o[0].node)];
				assert_int_equal(kb_sched_node_add_pod(nd, p),
				    0);
			}
			pl[npl].pod = kb_sched_pod_ref(p);
			snprintf(pl[npl].node, sizeof(pl[npl].node), "%s",
			    o[0].node);
			pl[npl++].at = i;
			placed++;
		} else {
			assert_int_equal(r[0], KB_SCHED_UNSCHEDULABLE);
			cached_msgs += class_of(i) == C_HUGE;
			failed++;
		}
		for (int k = 0; k < 3; k++)
			sp_outcome_clear(&o[k]);
		kb_sched_pod_unref(p);

		/* Churn, alike in the three worlds. Pods go: every third
		 * cycle one placed earlier, and anti-affinity pods two
		 * cycles after they came (so most cycles are node-local). */
		for (size_t j = 0; j < npl; j++) {
			bool go = (class_of(pl[j].at) == C_ANTI &&
				      i - pl[j].at >= 2) ||
			    (i % 3 == 0 && j == (size_t)(i * 7) % npl);
			if (!go)
				continue;
			for (int k = 0; k < 3; k++) {
				size_t at = find(&w[k], pl[j].node);
				/* gone with its node? */
				if (strcmp(w[k].nodes[at]->name, pl[j].node))
					continue;
				kb_sched_node_remove_pod(w[k].nodes[at],
				    pl[j].pod->ns, pl[j].pod->name);
			}
			kb_sched_pod_unref(pl[j].pod);
			pl[j] = pl[--npl];
			break;
		}
		if (i % 20 == 19) {
			size_t at = ((size_t)i * 13) % w[0].n;
			version++;
			for (int k = 0; k < 3; k++)
				world_replace(&w[k], at, version);
		}
		if (i == 1000 || i == 2200) {
			/* New nodes at the end (their names sort last). */
			for (int m = 0; m < 12; m++, next_id++)
				for (int k = 0; k < 3; k++)
					world_add(&w[k], next_id);
		}
		if (i == 1500 || i == 2600) {
			size_t at = w[0].n / 2 + (size_t)i % 7;
			char gone[256];
			snprintf(gone, sizeof(gone), "%s",
			    w[0].nodes[at]->name);
			for (int k = 0; k < 3; k++)
				world_delete(&w[k], at);
			/* Its pods went with it. */
			for (size_t j = 0; j < npl;) {
				if (strcmp(pl[j].node, gone)) {
					j++;
					continue;
				}
				kb_sched_pod_unref(pl[j].pod);
				pl[j] = pl[--npl];
			}
		}
		for (int k = 0; k < 3; k++)
			world_totals(&w[k]);
	}
	for (size_t j = 0; j < npl; j++)
		kb_sched_pod_unref(pl[j].pod);
	for (int k = 1; k < 3; k++) {
		const struct sp_eqcache *q = w[k].conf.profiles[0].eq;
		assert_non_null(q);
		fprintf(stderr,
		    "eqcache: world %d: %lld of %lld node-local cycles through "
		    "a class, %lld rows filtered (a full pass: %lld), %lld "
		    "scored, %lld classes\n",
		    k, (long long)q->cached, (long long)q->cycles,
		    (long long)q->rows_filtered,
		    (long long)q->cached * (long long)w[0].n,
		    (long long)q->rows_scored, (long long)q->classes);
		/* Most cycles went through a class, and it saved most rows;
		 * some were not node-local. */
		assert_true(q->cached > npods / 2);
		assert_true(q->rows_filtered < q->cached * (int64_t)w[0].n / 4);
		assert_true(q->cached < q->cycles);
		/* One-off pods made no class and evicted none. */
		assert_true(q->classes == 5 && q->evictions == 0);
	}
	assert_null(w[0].conf.profiles[0].eq);
	fprintf(stderr, "eqcache: %d placed, %d unschedulable, alike\n", placed,
	    failed);
	assert_true(placed > 2000);
	assert_true(cached_msgs > 50);
	for (int k = 0; k < 3; k++)
		world_free(&w[k]);
}

/* Generations: new on every change, never shared. */
static void test_generations(void **state)
{
	struct kb_sched_node *a = node(1, 0), *b = node(2, 0);
	struct kb_sched_pod *p = pod(0);
	assert_true(
	    a->generation && b->generation && a->generation != b->generation);
	struct kb_sched_columns *c =
	    kb_sched_columns_new((const struct kb_sched_node *const *)&a, 1);
	assert_true(KB_SCHED_FIELD(c, gen));
	assert_true(c->gen[0] == a->generation);
	uint64_t g = a->generation;
	assert_int_equal(kb_sched_node_add_pod(a, p), 0);
	assert_true(a->generation > g && c->gen[0] == a->generation);
	g = a->generation;
	assert_int_equal(kb_sched_node_remove_pod(a, p->ns, p->name), 0);
	assert_true(a->generation > g && c->gen[0] == a->generation);
	g = a->generation;
	assert_int_equal(kb_sched_node_remove_pod(a, p->ns, p->name),
	    KB_ENOTFOUND);
	assert_true(a->generation == g);
	kb_sched_columns_set(c, 0, b);
	assert_true(c->gen[0] == b->generation);
	kb_sched_columns_free(c);
	kb_sched_node_free(a);
	kb_sched_node_free(b);
	kb_sched_pod_unref(p);
}

/* Which policies say node-local, for which pods. */
static void test_node_local(void **state)
{
	struct sp_config conf;
	char err[256];
	const char *yaml = "parallelism: 1\n";
	kb_conf *cf =
	    kb_conf_parse_yaml(yaml, strlen(yaml), "t.yaml", err, sizeof(err));
	assert_non_null(cf);
	assert_int_equal(sp_config_load(ctx, cf, &conf), 0);
	kb_conf_free(cf);
	assert_true(conf.equivalence_cache);
	struct sp_profile *prof = &conf.profiles[0];
	struct kb_sched_node *n = node(1, 0);
	struct kb_sched_snapshot snap = { .size = sizeof(snap),
		.nodes = (const struct kb_sched_node *const *)&n,
		.nnodes = 1,
		.totals = true };
	struct kb_sched_pod *web = pod(0), *spread = pod(7 + 9 * 3),
			    *anti = pod(7 + 9 * 1);
	assert_int_equal(class_of(0), C_WEB);
	assert_int_equal(class_of(7 + 9 * 3), C_SPREAD);
	assert_int_equal(class_of(7 + 9 * 1), C_ANTI);
	for (int round = 0; round < 2; round++) {
		/* round 1: a pod with a term is in the cluster */
		snap.naffinity_pods = snap.nanti_pods = (size_t)round;
		struct kb_sched_cycle *cy = kb_sched_cycle_new(&snap);
		for (size_t i = 0; i < prof->npolicies; i++) {
			const struct sp_policy *p = prof->policies[i];
			assert_true(KB_SCHED_HAS(p->ops, node_local));
			bool ipa = !strcmp(p->name, "sched-interpodaffinity");
			bool pts = !strcmp(p->name, "sched-podtopologyspread");
			assert_int_equal(p->ops->node_local(p->state, cy, web),
			    !(ipa && round));
			assert_int_equal(p->ops->node_local(p->state, cy,
					     spread),
			    !pts && !(ipa && round));
			assert_int_equal(p->ops->node_local(p->state, cy, anti),
			    !ipa);
		}
		kb_sched_cycle_free(cy);
	}
	kb_sched_pod_unref(web);
	kb_sched_pod_unref(spread);
	kb_sched_pod_unref(anti);
	kb_sched_node_free(n);
	sp_config_free(ctx, &conf);
}

/* A policy built before the node_local slot (its ops->size ends before
 * it) is never node-local: its profile takes the full pass. */
static void test_without_slot(void **state)
{
	static struct world w;
	world_init(&w, "parallelism: 1\n", false);
	struct sp_profile *prof = &w.conf.profiles[0];
	struct sp_policy *nr = NULL;
	for (size_t i = 0; i < prof->npolicies; i++)
		if (!strcmp(prof->policies[i]->name, "sched-noderesources"))
			nr = prof->policies[i];
	assert_non_null(nr);
	const struct kb_sched_policy_ops *keep = nr->ops;
	struct kb_sched_policy_ops old = *keep;
	old.size = offsetof(struct kb_sched_policy_ops, node_local);
	nr->ops = &old;
	for (int i = 0; i < 20; i++) {
		struct kb_sched_pod *p = pod(9 * i); /* C_WEB */
		struct sp_outcome o;
		assert_int_equal(sp_cycle_run(prof, &w.snap, p, &w.rng, &o),
		    KB_SCHED_SUCCESS);
		sp_outcome_clear(&o);
		kb_sched_pod_unref(p);
	}
	assert_non_null(prof->eq);
	assert_int_equal(prof->eq->cycles, 20);
	assert_int_equal(prof->eq->cached, 0);
	assert_int_equal(prof->eq->classes, 0);
	nr->ops = keep;
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_without_slot),
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_node_local),
		cmocka_unit_test(test_same_decisions),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
