/* tests/bench/deploy/bench_deploy.c — a whole control plane and 100 hollow
 * nodes in one process: a 3,000-replica Deployment from `kubectl apply`
 * until status.availableReplicas = 3,000, then a rolling update of its
 * image (another `kubectl apply`) to completion.
 *
 * The host (tests/harness.h): store-lmdb (sync: true, the shipped setting;
 * --no-sync turns it off), the apiserver on 127.0.0.1:0, the deployment,
 * replicaset, gc, namespace, endpoints and endpointslice controllers, the
 * scheduler, and --nodes
 * kubelets on runtime-fake (node hollow-N, pod IPs 10.(100+N).x.y). kubectl
 * reads DATA_DIR/admin.kubeconfig. The Deployment is read through the
 * `api` bus service (no HTTP cost on the clock) each time an informer of
 * the bench sees it change, and every 20 ms.
 *
 *   create   from just before `kubectl apply` until availableReplicas =
 *            replicas (and observedGeneration = generation);
 *   rollout  from just before the second `kubectl apply` (the image
 *            changed) until updatedReplicas = availableReplicas =
 *            replicas = status.replicas (old pods gone) and every other
 *            ReplicaSet of the Deployment is at 0 replicas.
 *
 *   bench-deploy [--nodes N] [--replicas N] [--timeout S] [--no-sync]
 *                [--rs-calls N] [--rs-burst N] [--bus-workers N] [--smoke]
 *                [--trace]
 *                [--trace-ms MS]
 *                [--calls] [--kubelet-sync DURATION]
 *                [--without PLUGIN,…]
 *
 * --calls: after each phase, the API calls (by component, verb, resource
 * and subresource) and the watch events applied by informers (by
 * component, resource, type), total and per pod, counted in the SDK.
 * --without: leave some of ctrl-gc, ctrl-namespace, ctrl-endpoints,
 * ctrl-endpointslice out of the host (an experiment: what their watches
 * cost; the phases do not need them).
 *
 * --rs-calls: ctrl-replicaset's concurrent_calls (creates or deletes in
 * flight at once; 1 is one call after another; 0, the default, leaves
 * the plugin's own).
 * --rs-burst: ctrl-replicaset's burst_replicas (most pods created or
 * deleted per reconcile; 500 is Kubernetes' constant; 0, the default,
 * leaves the plugin's own).
 *
 * Last line:
 *   RESULT deploy create_pods_per_s=N rollout_pods_per_s=N
 *       ratio=<create_pods_per_s/680>
 * (680 pods/s: kube-scheduler's own throughput threshold.) Exit status 1
 * when a phase did not complete in --timeout seconds or kubectl failed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <kubus/client.h>

#include "harness.h"

#define REF_PODS_PER_S 680.0

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* --without: a comma-separated list of plugins left out of the host. */
static bool left_out(const char *without, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = without; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !memcmp(p, name, n))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

static char *config(int nodes, bool sync, int rs_calls, int rs_burst,
    int bus_workers, const char *kl_sync, const char *without)
{
	size_t cap = 4096 + (size_t)nodes * 500, len = 0;
	char *y = malloc(cap), bw[64] = "", ks[64] = "", rc[96] = "";
	if (y == NULL)
		return NULL;
	if (rs_calls > 0 || rs_burst > 0) {
		char c[40] = "", b[40] = "";
		if (rs_calls > 0)
			snprintf(c, sizeof(c), "concurrent_calls: %d", rs_calls);
		if (rs_burst > 0)
			snprintf(b, sizeof(b), "burst_replicas: %d", rs_burst);
		snprintf(rc, sizeof(rc), ", config: {%s%s%s}", c,
		    *c && *b ? ", " : "", b);
	}
	if (bus_workers > 0)
		snprintf(bw, sizeof(bw), ", bus_workers: %d, bus_workers_max: %d",
		    bus_workers, bus_workers);
	if (kl_sync)
		snprintf(ks, sizeof(ks), ", sync_period: \"%.30s\"", kl_sync);
	len += (size_t)snprintf(y + len, cap - len,
	    "host: {name: bench, log_level: warn}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: %s}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\"%s}\n"
	    "  - {name: ctrl-deployment, use: ctrl-deployment}\n"
	    "  - {name: ctrl-replicaset, use: ctrl-replicaset%s}\n",
	    sync ? "true" : "false", bw, rc);
	static const char *const optional[] = { "ctrl-gc", "ctrl-namespace",
		"ctrl-endpoints", "ctrl-endpointslice" };
	for (size_t i = 0; i < sizeof(optional) / sizeof(*optional); i++)
		if (!left_out(without, optional[i]))
			len += (size_t)snprintf(y + len, cap - len,
			    "  - {name: %s, use: %s}\n", optional[i],
			    optional[i]);
	len += (size_t)snprintf(y + len, cap - len,
	    "  - {name: scheduler, use: scheduler}\n");
	for (int i = 0; i < nodes; i++)
		len += (size_t)snprintf(y + len, cap - len,
		    "  - name: kubelet-%d\n"
		    "    use: kubelet\n"
		    "    config: {node_name: hollow-%d, runtime: runtime-fake,"
		    " runtime_config: {ip_prefix: \"10.%d\"}%s}\n",
		    i, i, 100 + i % 150, ks);
	return y;
}

static const char deploy_fmt[] = "apiVersion: apps/v1\n"
				 "kind: Deployment\n"
				 "metadata:\n"
				 "  name: bench\n"
				 "  namespace: default\n"
				 "spec:\n"
				 "  replicas: %d\n"
				 "  selector:\n"
				 "    matchLabels: {app: bench}\n"
				 "  template:\n"
				 "    metadata:\n"
				 "      labels: {app: bench}\n"
				 "    spec:\n"
				 "      terminationGracePeriodSeconds: 1\n"
				 "      containers:\n"
				 "        - name: c\n"
				 "          image: %s\n";

/* --trace: pods seen created, bound, Ready and deleted, through an
 * informer of this process (what the controllers see, not the status). */
static atomic_int tr_added, tr_bound, tr_ready, tr_deleted;

static bool pod_bound(const msgpack_object *o)
{
	const char *s;
	size_t len;
	return kb_mp_str(o, "spec.nodeName", &s, &len) && len > 0;
}

static void tr_add(void *arg, const msgpack_object *o)
{
	(void)arg;
	tr_added++;
	tr_bound += pod_bound(o);
	tr_ready += kbt_cond_true(o, "Ready");
}

static void tr_update(void *arg, const msgpack_object *old,
    const msgpack_object *o)
{
	(void)arg;
	tr_bound += pod_bound(o) && !pod_bound(old);
	tr_ready += kbt_cond_true(o, "Ready") && !kbt_cond_true(old, "Ready");
}

static void tr_del(void *arg, const msgpack_object *o)
{
	(void)arg;
	(void)o;
	tr_deleted++;
}

/* The Deployment's changes, seen by an informer of this process: each
 * wakes wait_done at once rather than at its next poll, up to 20 ms
 * later (a phase ends when the status says so, as for `kubectl rollout
 * status`, which watches too). */
static pthread_mutex_t dep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dep_cv = PTHREAD_COND_INITIALIZER;
static uint64_t dep_changes;

static void dep_changed(void)
{
	pthread_mutex_lock(&dep_mu);
	dep_changes++;
	pthread_cond_broadcast(&dep_cv);
	pthread_mutex_unlock(&dep_mu);
}

static void dep_add(void *arg, const msgpack_object *o)
{
	(void)arg;
	(void)o;
	dep_changed();
}

static void dep_update(void *arg, const msgpack_object *old,
    const msgpack_object *o)
{
	(void)arg;
	(void)old;
	(void)o;
	dep_changed();
}

static uint64_t dep_seen(void)
{
	pthread_mutex_lock(&dep_mu);
	uint64_t n = dep_changes;
	pthread_mutex_unlock(&dep_mu);
	return n;
}

/* Until the Deployment changes after `seen`, or ms pass. */
static void dep_wait(uint64_t seen, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_mutex_lock(&dep_mu);
	while (dep_changes == seen &&
	    pthread_cond_timedwait(&dep_cv, &dep_mu, &ts) == 0)
		;
	pthread_mutex_unlock(&dep_mu);
}

struct st {
	int64_t gen, observed, replicas, updated, ready, available, total;
};

static bool deploy_status(kb_ctx *c, struct st *s)
{
	kb_msg *rep = NULL;
	memset(s, 0, sizeof(*s));
	int rc = kb_api_get(c, &KB_GVR_DEPLOYMENTS, "default", "bench", &rep);
	if (rc == 0) {
		const msgpack_object *d = kb_msg_body(rep);
		kb_mp_int(d, "metadata.generation", &s->gen);
		kb_mp_int(d, "status.observedGeneration", &s->observed);
		kb_mp_int(d, "spec.replicas", &s->replicas);
		kb_mp_int(d, "status.updatedReplicas", &s->updated);
		kb_mp_int(d, "status.readyReplicas", &s->ready);
		kb_mp_int(d, "status.availableReplicas", &s->available);
		kb_mp_int(d, "status.replicas", &s->total);
	}
	kb_msg_free(rep);
	return rc == 0;
}

/* ReplicaSets of app=bench with spec.replicas > 0 (the new one counts). */
static int live_replicasets(kb_ctx *c)
{
	kb_msg *rep = NULL;
	int n = -1;
	if (kb_api_list(c, &KB_GVR_REPLICASETS, "default", "app=bench", NULL,
		&rep) == 0) {
		const msgpack_object *items =
		    kb_mp_key(kb_msg_body(rep), "items");
		n = 0;
		for (uint32_t i = 0;
		     items && items->type == MSGPACK_OBJECT_ARRAY &&
		     i < items->via.array.size;
		     i++) {
			int64_t r = 0, sr = 0;
			kb_mp_int(&items->via.array.ptr[i], "spec.replicas",
			    &r);
			kb_mp_int(&items->via.array.ptr[i], "status.replicas",
			    &sr);
			n += r > 0 || sr > 0;
		}
	}
	kb_msg_free(rep);
	return n;
}

static int kubectl(const char *prefix, const char *args)
{
	char cmd[8192], *out = NULL;
	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", prefix, args);
	int rc = kbt_run(cmd, &out);
	fprintf(stderr, "kubectl %s: %s", args, out ? out : "\n");
	free(out);
	return rc;
}

/* --trace: the API server's request counters (verb, resource, code). */
static void print_requests(const char *prefix, const char *phase)
{
	char cmd[4300], *out = NULL;
	snprintf(cmd, sizeof(cmd), "%s get --raw /metrics 2>&1", prefix);
	if (kbt_run(cmd, &out) == 0 && out) {
		for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
			if (!strncmp(l, "apiserver_request_total{", 24))
				fprintf(stderr, "  %s: %s\n", phase, l + 23);
	}
	free(out);
}

/* --calls: the SDK's counters (kb_count_*, kubus/client.h) of the phase,
 * summed over instances of one plugin (kubelet-17 -> kubelet), per pod. */
struct crow {
	char key[200];
	double n, bytes;
};

static int crow_cmp(const void *a, const void *b)
{
	return strcmp(((const struct crow *)a)->key,
	    ((const struct crow *)b)->key);
}

static void print_counts(const char *phase, int replicas)
{
	char *text = kb_count_dump(true);
	if (text == NULL)
		return;
	struct crow *rows = NULL;
	size_t n = 0, cap = 0;
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
		/* "call <inst> <op> <res>\tN", "event <inst> <res> <type>\tN",
		 * and the same capitalised for bytes */
		char kind[8], inst[40], a[40], b[64];
		unsigned long long v;
		if (sscanf(l, "%7s %39s %39s %63[^\t]\t%llu", kind, inst, a, b,
			&v) != 5)
			continue;
		size_t il = strlen(inst);
		while (il > 0 && inst[il - 1] >= '0' && inst[il - 1] <= '9')
			il--;
		if (il > 0 && il < strlen(inst) && inst[il - 1] == '-')
			inst[il - 1] = '\0';
		bool bytes = kind[0] == 'C' || kind[0] == 'E';
		char key[200];
		snprintf(key, sizeof(key), "%-5s %-20s %-8s %s",
		    kind[0] == 'c' || kind[0] == 'C' ? "call" : "event", inst,
		    a, b);
		size_t i = 0;
		while (i < n && strcmp(rows[i].key, key))
			i++;
		if (i == n) {
			if (n == cap) {
				size_t c = cap ? cap * 2 : 64;
				struct crow *r = realloc(rows, c * sizeof(*r));
				if (r == NULL)
					break;
				rows = r;
				cap = c;
			}
			memset(&rows[n], 0, sizeof(rows[n]));
			snprintf(rows[n].key, sizeof(rows[n].key), "%s", key);
			n++;
		}
		if (bytes)
			rows[i].bytes += (double)v;
		else
			rows[i].n += (double)v;
	}
	qsort(rows, n, sizeof(*rows), crow_cmp);
	double calls = 0, events = 0, cb = 0, eb = 0;
	fprintf(stderr,
	    "%s calls and watch events per pod (%d pods):\n"
	    "  %-5s %-20s %-8s %-26s %9s %8s %8s\n",
	    phase, replicas, "what", "by", "verb/res", "resource/type", "total",
	    "per pod", "B each");
	for (size_t i = 0; i < n; i++) {
		fprintf(stderr, "  %-64s %9.0f %8.3f %8.0f\n", rows[i].key,
		    rows[i].n, rows[i].n / replicas,
		    rows[i].n > 0 ? rows[i].bytes / rows[i].n : 0);
		if (rows[i].key[0] == 'c') {
			calls += rows[i].n;
			cb += rows[i].bytes;
		} else {
			events += rows[i].n;
			eb += rows[i].bytes;
		}
	}
	fprintf(stderr,
	    "%s totals: %.0f calls (%.2f per pod, %.0f KB), %.0f watch events "
	    "(%.2f per pod, %.0f KB)\n",
	    phase, calls, calls / replicas, cb / 1024, events,
	    events / replicas, eb / 1024);
	free(rows);
	free(text);
}

/* Wait for the phase's end; its duration in ms, or -1 on timeout. */
static int64_t wait_done(kb_ctx *c, int64_t t0, int timeout_s, bool rollout,
    const char *phase, int print_ms)
{
	int64_t last_print = 0;
	struct st s;
	for (;;) {
		int64_t now = kbt_now_ms();
		uint64_t seen = dep_seen();
		bool got = deploy_status(c, &s);
		bool done = got && s.replicas > 0 && s.observed >= s.gen &&
		    s.available == s.replicas;
		if (rollout)
			done = done && s.updated == s.replicas &&
			    s.total == s.replicas;
		if (done && rollout)
			done = live_replicasets(c) == 1;
		if (done)
			return kbt_now_ms() - t0;
		if (now - last_print >= print_ms) {
			char tr[160] = "";
			if (print_ms < 1000)
				snprintf(tr, sizeof(tr),
				    " | pods added=%d bound=%d ready=%d "
				    "deleted=%d",
				    tr_added, tr_bound, tr_ready, tr_deleted);
			fprintf(stderr,
			    "  %s %5.2fs: replicas=%lld updated=%lld ready=%lld "
			    "available=%lld (of %lld)%s\n",
			    phase, (double)(now - t0) / 1000,
			    (long long)s.total, (long long)s.updated,
			    (long long)s.ready, (long long)s.available,
			    (long long)s.replicas, tr);
			last_print = now;
		}
		if (now - t0 > (int64_t)timeout_s * 1000)
			return -1;
		dep_wait(seen, 20);
	}
}

static void usage(void)
{
	fprintf(stderr,
	    "usage: bench-deploy [--nodes N] [--replicas N] [--timeout S] "
	    "[--no-sync] [--rs-calls N] [--rs-burst N] [--bus-workers N] "
	    "[--smoke] "
	    "[--trace] [--trace-ms MS] [--calls] [--kubelet-sync DURATION] "
	    "[--without PLUGIN,…]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int nodes = 100, replicas = 3000, timeout_s = 300;
	int rs_calls = 0; /* 0: ctrl-replicaset's default */
	int rs_burst = 0; /* 0: ctrl-replicaset's default */
	int bus_workers = 0; /* 0: the apiserver's default */
	bool sync = true, trace = false, calls = false;
	int trace_ms = 250; /* --trace's period */
	const char *kl_sync = NULL; /* the kubelets' sync_period */
	const char *without = NULL; /* plugins left out */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
			nodes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--replicas") && i + 1 < argc)
			replicas = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout_s = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rs-calls") && i + 1 < argc)
			rs_calls = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rs-burst") && i + 1 < argc)
			rs_burst = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--bus-workers") && i + 1 < argc)
			bus_workers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-sync"))
			sync = false;
		else if (!strcmp(argv[i], "--trace"))
			trace = true;
		else if (!strcmp(argv[i], "--trace-ms") && i + 1 < argc) {
			trace = true;
			trace_ms = atoi(argv[++i]);
		}
		else if (!strcmp(argv[i], "--calls"))
			calls = true;
		else if (!strcmp(argv[i], "--without") && i + 1 < argc)
			without = argv[++i];
		else if (!strcmp(argv[i], "--kubelet-sync") && i + 1 < argc)
			kl_sync = argv[++i];
		else if (!strcmp(argv[i], "--smoke")) {
			nodes = 5;
			replicas = 100;
			timeout_s = 60;
		} else
			usage();
	}
	if (nodes < 1 || nodes > 1000 || replicas < 1 ||
	    replicas > nodes * 110 || timeout_s < 1 || rs_calls < 0 ||
	    rs_calls > 1000 || rs_burst < 0 || rs_burst > 100000 ||
	    bus_workers < 0 || bus_workers > 1024 ||
	    trace_ms < 1)
		usage();
	if (access("/usr/bin/kubectl", X_OK) != 0) {
		fprintf(stderr,
		    "bench-deploy: no /usr/bin/kubectl "
		    "(./build.sh installs kubernetes-client)\n");
		return 1;
	}
	char *yaml = config(nodes, sync, rs_calls, rs_burst, bus_workers,
	    kl_sync, without);
	char err[1024];
	int64_t t_host = kbt_now_ms();
	struct kbt_host *h = yaml ? kbt_host_start(yaml, err, sizeof(err)) :
				    NULL;
	free(yaml);
	if (h == NULL) {
		fprintf(stderr, "bench-deploy: host: %s\n", err);
		return 1;
	}
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *c = kbt_client(h, "bench", "plugin:bench", groups, 1);
	char *tmp = kbt_mkdtemp("bench-deploy");
	char prefix[4096], f1[4200], f2[4200];
	snprintf(prefix, sizeof(prefix),
	    "HOME=%s KUBECONFIG=%s/admin.kubeconfig /usr/bin/kubectl "
	    "--cache-dir=%s/cache --request-timeout=60s",
	    tmp, kbt_host_data_dir(h), tmp);
	snprintf(f1, sizeof(f1), "%s/v1.yaml", tmp);
	snprintf(f2, sizeof(f2), "%s/v2.yaml", tmp);
	FILE *f = fopen(f1, "w");
	if (f) {
		fprintf(f, deploy_fmt, replicas, "busybox:1");
		fclose(f);
	}
	f = fopen(f2, "w");
	if (f) {
		fprintf(f, deploy_fmt, replicas, "busybox:2");
		fclose(f);
	}
	int rc = 1;
	struct kb_informer *tr_inf = NULL;
	static const struct kb_informer_handlers dh = { dep_add, dep_update,
		NULL };
	struct kb_informer_opts dopts = { .ns = "default" };
	struct kb_informer *dep_inf =
	    kb_informer_new(c, &KB_GVR_DEPLOYMENTS, &dopts, &dh, NULL);
	if (dep_inf == NULL || kb_informer_start(dep_inf) != 0) {
		fprintf(stderr, "bench-deploy: no deployment informer\n");
		goto out;
	}
	if (trace) {
		static const struct kb_informer_handlers th = { tr_add,
			tr_update, tr_del };
		struct kb_informer_opts to = { .ns = "default" };
		tr_inf = kb_informer_new(c, &KB_GVR_PODS, &to, &th, NULL);
		if (tr_inf == NULL || kb_informer_start(tr_inf) != 0) {
			fprintf(stderr, "bench-deploy: no pod informer\n");
			goto out;
		}
	}
	int print_ms = trace ? trace_ms : 1000;
	/* every node Ready before the clock starts */
	int ready_nodes = 0;
	for (int i = 0; i < 600 && ready_nodes < nodes; i++) {
		kb_msg *rep = NULL;
		if (kb_api_list(c, &KB_GVR_NODES, NULL, NULL, NULL, &rep) ==
		    0) {
			const msgpack_object *it =
			    kb_mp_key(kb_msg_body(rep), "items");
			ready_nodes = it && it->type == MSGPACK_OBJECT_ARRAY ?
			    (int)it->via.array.size :
			    0;
		}
		kb_msg_free(rep);
		if (ready_nodes < nodes)
			sleep_ms(100);
	}
	fprintf(stderr, "bench-deploy: %d nodes registered in %.1fs\n",
	    ready_nodes, (double)(kbt_now_ms() - t_host) / 1000);
	char args[8400];
	if (kubectl(prefix, "version") != 0)
		goto out;
	snprintf(args, sizeof(args), "apply -f %s", f1);
	struct kbt_cpu_groups g0, g1, g2;
	if (calls) {
		kb_count_enable(true);
		free(kb_count_dump(true)); /* from zero at the phase's start */
	}
	kbt_cpu_by_thread(&g0);
	double cpu0 = cpu_s();
	int64_t t0 = kbt_now_ms();
	if (kubectl(prefix, args) != 0)
		goto out;
	fprintf(stderr, "  create  kubectl apply returned after %.3fs\n",
	    (double)(kbt_now_ms() - t0) / 1000);
	int64_t create_ms =
	    wait_done(c, t0, timeout_s, false, "create", print_ms);
	double cpu1 = cpu_s();
	kbt_cpu_by_thread(&g1);
	kbt_print_cpu_groups("create", &g0, &g1, replicas);
	if (create_ms < 0) {
		fprintf(stderr, "bench-deploy: create did not finish in %ds\n",
		    timeout_s);
		goto out;
	}
	double create_rate =
	    replicas * 1000.0 / (double)(create_ms ? create_ms : 1);
	if (calls)
		print_counts("create", replicas);
	if (trace) {
		print_requests(prefix, "after create");
		fprintf(stderr, "  create  window: CLOCK_MONOTONIC %.3f-%.3f "
		    "(perf record -k CLOCK_MONOTONIC)\n", t0 / 1000.0,
		    (t0 + create_ms) / 1000.0);
	}
	printf("create: %d pods available in %.2fs = %.0f pods/s (cpu %.1fs)\n",
	    replicas, create_ms / 1000.0, create_rate, cpu1 - cpu0);
	fflush(stdout);
	snprintf(args, sizeof(args), "apply -f %s", f2);
	if (calls)
		free(kb_count_dump(true));
	t0 = kbt_now_ms();
	if (kubectl(prefix, args) != 0)
		goto out;
	fprintf(stderr, "  rollout kubectl apply returned after %.3fs\n",
	    (double)(kbt_now_ms() - t0) / 1000);
	int64_t roll_ms =
	    wait_done(c, t0, timeout_s, true, "rollout", print_ms);
	double cpu2 = cpu_s();
	kbt_cpu_by_thread(&g2);
	kbt_print_cpu_groups("rollout", &g1, &g2, replicas);
	if (roll_ms < 0) {
		fprintf(stderr, "bench-deploy: rollout did not finish in %ds\n",
		    timeout_s);
		goto out;
	}
	double roll_rate = replicas * 1000.0 / (double)(roll_ms ? roll_ms : 1);
	if (calls)
		print_counts("rollout", replicas);
	if (trace) {
		print_requests(prefix, "after rollout");
		fprintf(stderr, "  rollout window: CLOCK_MONOTONIC %.3f-%.3f\n",
		    t0 / 1000.0, (t0 + roll_ms) / 1000.0);
	}
	printf("rollout: %d pods replaced in %.2fs = %.0f pods/s (cpu %.1fs)\n",
	    replicas, roll_ms / 1000.0, roll_rate, cpu2 - cpu1);
	printf("reference: kube-scheduler's threshold %.0f pods/s; "
	       "nodes=%d replicas=%d store sync=%s rs-calls=%d rs-burst=%d "
	       "bus-workers=%d "
	       "nproc=%ld%s%s\n",
	    REF_PODS_PER_S, nodes, replicas, sync ? "true" : "false", rs_calls,
	    rs_burst, bus_workers, sysconf(_SC_NPROCESSORS_ONLN),
	    without ? " without=" : "", without ? without : "");
	printf("RESULT deploy create_pods_per_s=%.0f rollout_pods_per_s=%.0f "
	       "ratio=%.2f\n",
	    create_rate, roll_rate, create_rate / REF_PODS_PER_S);
	rc = 0;
out:
	fflush(stdout);
	if (tr_inf)
		kb_informer_free(tr_inf);
	if (dep_inf)
		kb_informer_free(dep_inf);
	kbt_host_stop(h);
	kbt_rmrf(tmp);
	free(tmp);
	return rc;
}
