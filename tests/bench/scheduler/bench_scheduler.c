/* tests/bench/scheduler/bench_scheduler.c — scheduler_perf's
 * "SchedulingBasic" shape, end to end, and the framework's decision rate.
 *
 * One process: an in-process host (tests/harness.h) with store-lmdb (the
 * shipped sync: true unless --no-sync), the API server and the scheduler
 * with its default profile (every filter and score: NodeUnschedulable,
 * NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit,
 * PodTopologySpread, InterPodAffinity, BalancedAllocation), scoring every
 * feasible node (the framework never samples).
 *
 *   decide   the framework alone (plugins/scheduler/cycle.c, the profile
 *            from config.c, the policies loaded as the scheduler loads
 *            them) on a snapshot of --nodes nodes: --pods decisions, each
 *            pod then accounted on its node as the scheduler assumes it.
 *   e2e      --nodes Node objects created through the `api` bus service
 *            (no kubelets) with allocatable cpu 4, memory 32Gi, pods 110
 *            set through nodes/status (Ready); then --pods pods (100m cpu,
 *            500Mi memory, as scheduler_perf's pod-default.yaml) created
 *            through the api with --window creates in flight. A pod
 *            informer timestamps each pod when it is seen bound.
 *            pods_per_s = pods / (last bound - first create sent);
 *            latency per pod = bound - its create sent; creates_per_s is
 *            the create phase alone (its first send to its last reply).
 *
 *   create   (--only create) the e2e part without the scheduler: the API's
 *            create rate for the same pods on the same store, to show
 *            where the end-to-end time goes.
 *
 *   bench-scheduler [--nodes N] [--pods N] [--window N] [--no-sync]
 *                   [--parallelism N] [--only decide|e2e|create]
 *                   [--timeout S] [--smoke] [--per-node]
 *                   [--eq both|on|off]
 * (--eq: decide without the equivalence cache, with it, or both: the
 * default, the cached figure in RESULT; e2e's scheduler has it unless
 * --eq off.)
 * (--parallelism: the scheduler's Filter/Score threads, in both parts;
 * 0 = its default, half the CPUs.)
 *
 * Last line:
 *   RESULT scheduler pods_per_s=N p99_ms=N decisions_per_s=N
 *       ratio=<pods_per_s/680>
 * (680 pods/s: kube-scheduler's CI threshold for this workload.)
 * Exit status 1 when a pod was not bound in time, a call failed or a
 * decision was not SUCCESS. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <kubus/client.h>
#include <kubus/kubus.h>

#include "harness.h"
#include "scheduler.h"

#define REF_PODS_PER_S 680.0

static const char *const groups[] = { "kubus:plugins" };

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static struct {
	int nodes, pods, window, timeout_s, parallelism;
	bool sync, smoke, per_node;
	const char *only;
	const char *eq; /* decide: "both", "on", "off" */
} opt = { 5000, 10000, 512, 300, 0, true, false, false, NULL, "both" };

/* --- objects ---------------------------------------------------------------- */

static kb_body *node_obj(int i, bool with_status)
{
	char name[32];
	snprintf(name, sizeof(name), "node-%05d", i);
	if (!with_status)
		return kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion",
		    "v1", "kind", "Node", "metadata", "name", name, "labels",
		    "kubernetes.io/hostname", name);
	return kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:{s:s, s:s, s:s}, "
			  "s:{s:s, s:s, s:s}, s:[{s:s, s:s}]}}",
	    "apiVersion", "v1", "kind", "Node", "metadata", "name", name,
	    "labels", "kubernetes.io/hostname", name, "status", "capacity",
	    "cpu", "4", "memory", "32Gi", "pods", "110", "allocatable", "cpu",
	    "4", "memory", "32Gi", "pods", "110", "conditions", "type", "Ready",
	    "status", "True");
}

static int big_pod = -1; /* this one asks for 100 cpu */

static kb_body *pod_obj(int i)
{
	char name[32];
	snprintf(name, sizeof(name), "bench-%06d", i);
	if (i == big_pod)
		return kb_mp_body("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s, s:s, "
				  "s:{s:{s:s}}}]}}",
		    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
		    "namespace", "bench", "spec", "containers", "name", "c",
		    "image", "registry.k8s.io/pause:3.9", "resources",
		    "requests", "cpu", "100");
	return kb_mp_body("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s, s:s, "
			  "s:{s:{s:s, s:s}}}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
	    "namespace", "bench", "spec", "containers", "name", "c", "image",
	    "registry.k8s.io/pause:3.9", "resources", "requests", "cpu", "100m",
	    "memory", "500Mi");
}

/* --- CPU: the process's, and by thread name ------------------------------------------ */

static long nvcsw; /* voluntary context switches at the last call */

static double proc_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	nvcsw = ru.ru_nvcsw;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* --- async calls with a window ---------------------------------------------------- */

struct window {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int inflight, max;
	int64_t errors;
	int64_t last_reply_ns;
	char first_err[256];
};

static void win_init(struct window *w, int max)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->max = max;
}

static void win_done(void *arg, int rc, const kb_msg *rep)
{
	struct window *w = arg;
	pthread_mutex_lock(&w->mu);
	if (rc) {
		if (w->errors++ == 0) {
			const char *m = NULL;
			if (rep)
				kb_msg_err(rep, &m);
			snprintf(w->first_err, sizeof(w->first_err), "%s: %s",
			    kb_strerror(rc), m ? m : "");
		}
	}
	w->last_reply_ns = now_ns();
	w->inflight--;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void win_send(struct window *w, kb_ctx *c, const char *op, kb_body *b)
{
	pthread_mutex_lock(&w->mu);
	while (w->inflight >= w->max)
		pthread_cond_wait(&w->cv, &w->mu);
	w->inflight++;
	pthread_mutex_unlock(&w->mu);
	if (b == NULL || kb_request(c, "api", op, b, 60000, win_done, w)) {
		kb_body_unref(b);
		win_done(w, KB_ENOMEM, NULL);
	}
}

static void win_drain(struct window *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->inflight > 0)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* --- the pod informer: when each pod is seen bound ------------------------------------ */

static int64_t *sent_ns, *bound_ns;
static atomic_int nbound;

static void pod_seen(const msgpack_object *obj)
{
	const char *name, *node;
	size_t nl, ndl;
	if (!kb_mp_str(obj, "metadata.name", &name, &nl) ||
	    !kb_mp_str(obj, "spec.nodeName", &node, &ndl) || ndl == 0 ||
	    nl != 12 || strncmp(name, "bench-", 6))
		return;
	int i = atoi(name + 6);
	if (i < 0 || i > opt.pods || bound_ns[i])
		return;
	bound_ns[i] = now_ns();
	atomic_fetch_add(&nbound, 1);
}

static void pod_add(void *arg, const msgpack_object *obj)
{
	pod_seen(obj);
}

static void pod_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	pod_seen(obj);
}

/* --- the framework alone -------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	const struct kb_sched_node *x = *(const struct kb_sched_node *const *)a;
	const struct kb_sched_node *y = *(const struct kb_sched_node *const *)b;
	return strcmp(x->name, y->name);
}

/* The default profile with `parallelism` threads, the equivalence cache
 * on or off. */
static int load_conf(kb_ctx *c, int parallelism, bool eq,
    struct sp_config *conf)
{
	char yaml[128], err[256];
	snprintf(yaml, sizeof(yaml), "parallelism: %d\nequivalenceCache: %s\n",
	    parallelism, eq ? "true" : "false");
	kb_conf *cf =
	    kb_conf_parse_yaml(yaml, strlen(yaml), "bench", err, sizeof(err));
	int lrc = cf ? sp_config_load(c, cf, conf) : -1;
	kb_conf_free(cf);
	if (lrc)
		fprintf(stderr, "bench: cannot load the default profile\n");
	return lrc;
}

static void eq_stats(const char *what, const struct sp_profile *prof)
{
	const struct sp_eqcache *q = prof->eq;
	if (q == NULL) {
		fprintf(stderr, "%s: equivalence cache off or unused\n", what);
		return;
	}
	fprintf(stderr,
	    "%s: equivalence cache: %lld of %lld node-local cycles through a "
	    "class, %lld rows filtered, %lld scored, %lld classes made, "
	    "%lld evicted\n",
	    what, (long long)q->cached, (long long)q->cycles,
	    (long long)q->rows_filtered, (long long)q->rows_scored,
	    (long long)q->classes, (long long)q->evictions);
}

/* The decisions, with `parallelism` threads, on a snapshot with columns
 * (the policies' batch slots) or without (every policy node by node),
 * with the equivalence cache or without; each pod's node (or the message
 * of the last, unschedulable, one) into choices[] when not NULL. */
static double decide(kb_ctx *c, int parallelism, bool columns, bool eq,
    char **choices)
{
	struct sp_config conf;
	if (load_conf(c, parallelism, eq, &conf))
		return -1;
	struct sp_profile *prof = &conf.profiles[0];
	fprintf(stderr,
	    "decide: profile %s: %zu filters, %zu scores, %lld threads\n",
	    prof->name, prof->npoints[P_FILTER], prof->npoints[P_SCORE],
	    (long long)conf.parallelism);
	struct kb_sched_node **nodes =
	    calloc((size_t)opt.nodes, sizeof(*nodes));
	for (int i = 0; i < opt.nodes; i++) {
		kb_body *b = node_obj(i, true);
		nodes[i] = kb_sched_node_new(kb_body_obj(b));
		kb_body_unref(b);
	}
	qsort(nodes, (size_t)opt.nodes, sizeof(*nodes), by_name);
	/* As the scheduler's cache gives it: with the affinity totals. */
	struct kb_sched_columns *cols = columns ?
	    kb_sched_columns_new((const struct kb_sched_node *const *)nodes,
		(size_t)opt.nodes) :
	    NULL;
	struct kb_sched_snapshot snap = { sizeof(snap),
		(const struct kb_sched_node *const *)nodes, (size_t)opt.nodes,
		true, 0, 0, cols };
	struct kb_sched_pod **pods = calloc((size_t)opt.pods, sizeof(*pods));
	for (int i = 0; i < opt.pods; i++) {
		kb_body *b = pod_obj(i);
		pods[i] = kb_sched_pod_new(kb_body_obj(b));
		kb_body_unref(b);
	}
	uint64_t rng = 42;
	int bad = 0;
	struct timespec c0, c1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	int64_t t0 = now_ns();
	for (int i = 0; i < opt.pods; i++) {
		struct sp_outcome out;
		int rc = sp_cycle_run(prof, &snap, pods[i], &rng, &out);
		if (choices)
			choices[i] = strdup(rc == KB_SCHED_SUCCESS ? out.node :
				out.message ? out.message :
					      "?");
		if (rc != KB_SCHED_SUCCESS) {
			if (bad++ == 0)
				fprintf(stderr, "decide: pod %d: %s\n", i,
				    out.message ? out.message : "?");
		} else {
			int n = atoi(out.node + 5); /* node-NNNNN, sorted */
			size_t a = nodes[n]->naffinity_pods,
			       b = nodes[n]->nanti_pods;
			kb_sched_node_add_pod(nodes[n], pods[i]);
			snap.naffinity_pods += nodes[n]->naffinity_pods - a;
			snap.nanti_pods += nodes[n]->nanti_pods - b;
		}
		sp_outcome_clear(&out);
	}
	int64_t dt = now_ns() - t0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	double cpu = (double)(c1.tv_sec - c0.tv_sec) +
	    (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	double rate = opt.pods / (dt / 1e9);
	/* How evenly LeastAllocated + BalancedAllocation spread them. */
	size_t mn = SIZE_MAX, mx = 0;
	for (int i = 0; i < opt.nodes; i++) {
		if (nodes[i]->npods < mn)
			mn = nodes[i]->npods;
		if (nodes[i]->npods > mx)
			mx = nodes[i]->npods;
	}
	fprintf(stderr,
	    "decide: %d pods on %d nodes in %.3f s: %.0f decisions/s "
	    "(%.1f us each, %.1f ns per node; process cpu %.3f s: %.0f "
	    "decisions per cpu-second; %s, equivalence cache %s); pods per "
	    "node %zu..%zu\n",
	    opt.pods, opt.nodes, dt / 1e9, rate, dt / 1e3 / opt.pods,
	    (double)dt / opt.pods / opt.nodes, cpu, opt.pods / cpu,
	    cols ? "columns, batch slots" : "node by node", eq ? "on" : "off",
	    mn, mx);
	eq_stats("decide", prof);
	kb_sched_columns_free(cols);
	for (int i = 0; i < opt.nodes; i++)
		kb_sched_node_free(nodes[i]);
	for (int i = 0; i < opt.pods; i++)
		kb_sched_pod_unref(pods[i]);
	free(nodes);
	free(pods);
	sp_config_free(c, &conf);
	return bad ? -1 : rate;
}

/* One thread node by node (every policy's per-node slots) without the
 * equivalence cache and three threads on columns (the batch slots) with
 * it must choose alike (Filter and
 * Score in chunks, the feasible nodes kept in order, the same random
 * tie-breaks), and a pod that fits nowhere must get the same message, its
 * reasons counted across chunks. */
static int same_decisions(kb_ctx *c)
{
	size_t n = (size_t)opt.pods + 1;
	char **a = calloc(n, sizeof(char *)), **b = calloc(n, sizeof(char *));
	int bad = 0;
	big_pod = opt.pods++; /* the last one asks for 100 cpu */
	if (decide(c, 1, false, false, a) < 0 &&
	    decide(c, 3, true, true, b) < 0) {
		for (size_t i = 0; i < n; i++) {
			if (a[i] == NULL || b[i] == NULL ||
			    strcmp(a[i], b[i])) {
				if (bad++ == 0)
					fprintf(stderr,
					    "smoke: pod %zu: %s with 1 thread node by node, %s with 3 on columns\n",
					    i, a[i] ? a[i] : "-",
					    b[i] ? b[i] : "-");
			}
		}
		char want[128];
		snprintf(want, sizeof(want),
		    "0/%d nodes are available: %d Insufficient cpu.", opt.nodes,
		    opt.nodes);
		if (a[n - 1] == NULL || strcmp(a[n - 1], want)) {
			fprintf(stderr,
			    "smoke: the 100-cpu pod: \"%s\", want \"%s\"\n",
			    a[n - 1] ? a[n - 1] : "-", want);
			bad++;
		}
	} else {
		fprintf(stderr, "smoke: the 100-cpu pod was scheduled\n");
		bad++;
	}
	opt.pods--;
	big_pod = -1;
	for (size_t i = 0; i < n; i++) {
		free(a[i]);
		free(b[i]);
	}
	free(a);
	free(b);
	fprintf(stderr,
	    "smoke: 1 thread node by node without the equivalence cache and "
	    "3 on columns with it decide alike: %s\n",
	    bad ? "NO" : "yes");
	return bad ? -1 : 0;
}

/* --- end to end ------------------------------------------------------------------------ */

static bool with_scheduler = true;

static int e2e(kb_ctx *c, double *pods_per_s, double *p99_ms)
{
	struct window w;
	win_init(&w, opt.window);
	int rc = 0;

	/* Nodes, then their status (capacity, allocatable, Ready). */
	int64_t t0 = now_ns();
	for (int i = 0; i < opt.nodes; i++) {
		kb_body *obj = node_obj(i, false);
		kb_body *b = kb_mp_body("{s:s, s:s, s:s, s:o}", "group", "",
		    "version", "v1", "resource", "nodes", "object",
		    kb_body_obj(obj));
		kb_body_unref(obj);
		win_send(&w, c, "create", b);
	}
	win_drain(&w);
	for (int i = 0; i < opt.nodes; i++) {
		char name[32];
		snprintf(name, sizeof(name), "node-%05d", i);
		kb_body *b =
		    kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s, "
			       "s:{s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}, "
			       "s:[{s:s, s:s}]}}}",
			"group", "", "version", "v1", "resource", "nodes",
			"name", name, "subresource", "status", "patchType",
			"merge", "patch", "status", "capacity", "cpu", "4",
			"memory", "32Gi", "pods", "110", "allocatable", "cpu",
			"4", "memory", "32Gi", "pods", "110", "conditions",
			"type", "Ready", "status", "True");
		win_send(&w, c, "patch", b);
	}
	win_drain(&w);
	fprintf(stderr, "e2e: %d nodes created and made Ready in %.2f s\n",
	    opt.nodes, (now_ns() - t0) / 1e9);
	if (w.errors) {
		fprintf(stderr, "e2e: %" PRId64 " node calls failed: %s\n",
		    w.errors, w.first_err);
		return -1;
	}
	kb_body *ns = kb_mp_body("{s:s, s:s, s:s, s:{s:s, s:s, s:{s:s}}}",
	    "group", "", "version", "v1", "resource", "namespaces", "object",
	    "apiVersion", "v1", "kind", "Namespace", "metadata", "name",
	    "bench");
	win_send(&w, c, "create", ns);
	win_drain(&w);

	sent_ns = calloc((size_t)opt.pods + 1, sizeof(int64_t));
	bound_ns = calloc((size_t)opt.pods + 1, sizeof(int64_t));
	static const struct kb_informer_handlers ph = { pod_add, pod_update,
		NULL };
	struct kb_informer_opts io = { .ns = "bench" };
	struct kb_informer *inf =
	    kb_informer_new(c, &KB_GVR_PODS, &io, &ph, NULL);
	if (inf == NULL || kb_informer_start(inf) ||
	    !kb_informer_wait_synced(inf, 10000)) {
		fprintf(stderr, "e2e: cannot start the pod informer\n");
		kb_informer_free(inf);
		return -1;
	}

	/* A warm-up pod (index opt.pods): the scheduler leads, has its
	 * caches and sees the nodes. */
	int64_t tw = now_ns();
	if (with_scheduler) {
		kb_body *obj = pod_obj(opt.pods);
		kb_body *b = kb_mp_body("{s:s, s:s, s:s, s:s, s:o}", "group",
		    "", "version", "v1", "resource", "pods", "namespace",
		    "bench", "object", kb_body_obj(obj));
		kb_body_unref(obj);
		win_send(&w, c, "create", b);
		win_drain(&w);
	}
	while (with_scheduler && bound_ns[opt.pods] == 0 &&
	    now_ns() - tw < 30000000000LL)
		usleep(2000);
	if (with_scheduler && bound_ns[opt.pods] == 0) {
		fprintf(stderr, "e2e: the warm-up pod was not bound in 30 s\n");
		kb_informer_free(inf);
		return -1;
	}
	atomic_store(&nbound, 0);
	if (with_scheduler)
		fprintf(stderr, "e2e: warm-up pod bound after %.2f s\n",
		    (bound_ns[opt.pods] - tw) / 1e9);

	struct kbt_cpu_groups g0, g1;
	kbt_cpu_by_thread(&g0);
	double cpu0 = proc_cpu_s();
	long csw0 = nvcsw;
	int64_t first = now_ns();
	for (int i = 0; i < opt.pods; i++) {
		kb_body *obj = pod_obj(i);
		kb_body *b = kb_mp_body("{s:s, s:s, s:s, s:s, s:o}", "group",
		    "", "version", "v1", "resource", "pods", "namespace",
		    "bench", "object", kb_body_obj(obj));
		kb_body_unref(obj);
		sent_ns[i] = now_ns();
		win_send(&w, c, "create", b);
	}
	win_drain(&w);
	int64_t created = w.last_reply_ns;
	fprintf(stderr,
	    "e2e: %d pods created in %.3f s (%.0f creates/s, %d in flight); "
	    "%d bound by then\n",
	    opt.pods, (created - first) / 1e9,
	    opt.pods / ((created - first) / 1e9), opt.window,
	    atomic_load(&nbound));
	if (w.errors) {
		fprintf(stderr, "e2e: %" PRId64 " creates failed: %s\n",
		    w.errors, w.first_err);
		rc = -1;
	}
	if (!with_scheduler) {
		/* --only create: the API's share alone. */
		kb_informer_free(inf);
		*pods_per_s = opt.pods / ((created - first) / 1e9);
		return rc;
	}
	/* Until all are bound, the deadline, or 20 s without progress. */
	int64_t deadline = first + (int64_t)opt.timeout_s * 1000000000LL;
	int seen = -1;
	int64_t progress = now_ns();
	while (atomic_load(&nbound) < opt.pods && now_ns() < deadline &&
	    now_ns() - progress < 20000000000LL) {
		if (atomic_load(&nbound) != seen) {
			seen = atomic_load(&nbound);
			progress = now_ns();
		}
		usleep(5000);
	}
	double cpu1 = proc_cpu_s();
	long csw1 = nvcsw;
	kbt_cpu_by_thread(&g1);
	kb_informer_free(inf);
	int got = atomic_load(&nbound);
	if (got < opt.pods) {
		fprintf(stderr,
		    "e2e: only %d of %d pods bound (%d s at most, 20 s without "
		    "progress; 4 cpu / 100m = 40 pods per node)\n",
		    got, opt.pods, opt.timeout_s);
		return -1;
	}
	int64_t last = 0;
	int64_t *lat = calloc((size_t)opt.pods, sizeof(int64_t));
	for (int i = 0; i < opt.pods; i++) {
		if (bound_ns[i] > last)
			last = bound_ns[i];
		lat[i] = bound_ns[i] - sent_ns[i];
	}
	qsort(lat, (size_t)opt.pods, sizeof(int64_t), cmp64);
	*pods_per_s = opt.pods / ((last - first) / 1e9);
	*p99_ms = lat[(size_t)((opt.pods - 1) * 0.99)] / 1e6;
	fprintf(stderr,
	    "e2e: %d pods bound in %.3f s: %.0f pods/s; latency p50 %.2f ms "
	    "p90 %.2f ms p99 %.2f ms max %.2f ms\n",
	    opt.pods, (last - first) / 1e9, *pods_per_s,
	    lat[(opt.pods - 1) / 2] / 1e6,
	    lat[(size_t)((opt.pods - 1) * 0.9)] / 1e6, *p99_ms,
	    lat[opt.pods - 1] / 1e6);
	fprintf(stderr,
	    "e2e: pod phase process cpu %.3f s: %.1f us per pod; %.1f "
	    "voluntary context switches per pod (threads waiting)\n",
	    cpu1 - cpu0, (cpu1 - cpu0) * 1e6 / opt.pods,
	    (double)(csw1 - csw0) / opt.pods);
	kbt_print_cpu_groups("e2e: pod phase", &g0, &g1, opt.pods);
	free(lat);
	return rc;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--nodes") && v)
			opt.nodes = atoi(argv[++i]);
		else if (!strcmp(a, "--pods") && v)
			opt.pods = atoi(argv[++i]);
		else if (!strcmp(a, "--window") && v)
			opt.window = atoi(argv[++i]);
		else if (!strcmp(a, "--timeout") && v)
			opt.timeout_s = atoi(argv[++i]);
		else if (!strcmp(a, "--parallelism") && v)
			opt.parallelism = atoi(argv[++i]);
		else if (!strcmp(a, "--only") && v)
			opt.only = argv[++i];
		else if (!strcmp(a, "--eq") && v)
			opt.eq = argv[++i];
		else if (!strcmp(a, "--no-sync"))
			opt.sync = false;
		else if (!strcmp(a, "--per-node"))
			opt.per_node = true;
		else if (!strcmp(a, "--smoke")) {
			opt.smoke = true;
			opt.nodes = 1000;
			opt.pods = 600;
			opt.timeout_s = 60;
		} else {
			fprintf(stderr,
			    "usage: bench-scheduler [--nodes N] [--pods N] [--window N] "
			    "[--no-sync] [--parallelism N] [--only decide|e2e|create] "
			    "[--timeout S] [--smoke] [--per-node] "
			    "[--eq both|on|off]\n");
			return 2;
		}
	}
	if (opt.nodes < 1 || opt.nodes > 99999 || opt.pods < 1 ||
	    opt.pods > 999999 || opt.window < 1 || opt.timeout_s < 1 ||
	    opt.parallelism < 0 || opt.parallelism > 64) {
		fprintf(stderr,
		    "bench-scheduler: --nodes 1..99999, --pods "
		    "1..999999, --window and --timeout > 0\n");
		return 2;
	}
	char yaml[2048], err[512];
	with_scheduler = opt.only == NULL || strcmp(opt.only, "create");
	char sched_yaml[256] = "";
	if (with_scheduler)
		snprintf(sched_yaml, sizeof(sched_yaml),
		    "  - name: scheduler\n"
		    "    use: scheduler\n"
		    "    config: {parallelism: %d, equivalenceCache: %s}\n",
		    opt.parallelism, strcmp(opt.eq, "off") ? "true" : "false");
	snprintf(yaml, sizeof(yaml),
	    "host:\n"
	    "  name: bench\n"
	    "  log_level: warn\n"
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-lmdb\n"
	    "    config: {sync: %s, map_size: 4Gi}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "%s",
	    opt.sync ? "true" : "false", sched_yaml);
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	if (h == NULL) {
		fprintf(stderr, "bench-scheduler: host: %s\n", err);
		return 1;
	}
	kb_ctx *c = kbt_client(h, "bench", "system:kube-scheduler", groups, 1);
	int status = 0;
	double decisions = 0, pps = 0, p99 = 0;
	if (opt.only == NULL || !strcmp(opt.only, "decide")) {
		/* Without the equivalence cache, then with it. */
		if (strcmp(opt.eq, "on") &&
		    decide(c, opt.parallelism, !opt.per_node, false, NULL) < 0)
			status = 1;
		if (strcmp(opt.eq, "off")) {
			decisions = decide(c, opt.parallelism, !opt.per_node,
			    true, NULL);
			if (decisions < 0)
				status = 1;
		}
	}
	if (opt.smoke && same_decisions(c))
		status = 1;
	if (opt.only == NULL || !strcmp(opt.only, "e2e") ||
	    !strcmp(opt.only, "create")) {
		if (e2e(c, &pps, &p99))
			status = 1;
	}
	if (!with_scheduler) {
		printf("RESULT scheduler-api-only creates_per_s=%.0f\n", pps);
		kbt_host_stop(h);
		free(sent_ns);
		free(bound_ns);
		return status;
	}
	kbt_host_stop(h);
	free(sent_ns);
	free(bound_ns);
	printf("RESULT scheduler pods_per_s=%.0f p99_ms=%.2f decisions_per_s=%.0f "
	       "ratio=%.2f\n",
	    pps, p99, decisions, pps / REF_PODS_PER_S);
	return status;
}
