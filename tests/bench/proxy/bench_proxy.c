/* tests/bench/proxy/bench_proxy.c — how long each proxy backend takes to
 * program N services x M endpoints from scratch (a full sync), and then to
 * apply one changed endpoint (an incremental sync), calling the backends'
 * vtables directly (kubus/proxy.h) through a fake host, in a network
 * namespace of its own (unshare: only `lo`, no route out, gone at exit).
 *
 *   bench-proxy [--services N] [--ipt-services N] [--endpoints M]
 *               [--changes K] [--backends nft,ipt,us] [--smoke]
 *
 * iptables runs at --ipt-services (default 1,000; see README.md: its
 * restore does not finish at 10,000 in minutes) and rewrites everything
 * on every sync, so it is timed on one change; userspace holds a socket per service port (RLIMIT_NOFILE is
 * raised to 65536).
 *
 * Last line:
 *   RESULT proxy nft_full_s=N nft_one_ms=N ipt_full_s=N ipt_services=N
 *       ratio=<ipt/nft at ipt_services>
 * (one_ms is the median of K single-endpoint changes.) */
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <kubus/kubus.h>
#include <kubus/proxy.h>

static const char *f_instance(kb_ctx *c)
{
	(void)c;
	return "bench";
}
static const char *f_host(kb_ctx *c)
{
	(void)c;
	return "bench";
}
static const char *f_dir(kb_ctx *c)
{
	(void)c;
	return "/tmp";
}
static int f_log_enabled(kb_ctx *c, int level)
{
	(void)c;
	return level >= KB_LOG_WARN;
}
static void f_log(kb_ctx *c, int level, const char *msg, const char *kv)
{
	(void)c;
	if (level >= KB_LOG_WARN)
		fprintf(stderr, "backend: %s %s\n", msg, kv ? kv : "");
}
static void f_fail(kb_ctx *c, const char *why)
{
	(void)c;
	fprintf(stderr, "backend failed: %s\n", why);
}

static const struct kb_host_api fake_api = {
	.size = sizeof(struct kb_host_api),
	.abi_major = KB_ABI_MAJOR,
	.abi_minor = KB_ABI_MINOR,
	.instance = f_instance,
	.host_name = f_host,
	.data_dir = f_dir,
	.log = f_log,
	.log_enabled = f_log_enabled,
	.fail = f_fail,
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process and its waited-for children (iptables-restore,
 * ip): on a shared, loaded machine the wall clock says more about the
 * neighbours than about the backend. */
static double cpu_s(void)
{
	struct timespec ts;
	struct rusage ru;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
		t += (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return t;
}

struct world {
	size_t nsvc, neps;
	struct kb_px_service *svcs;
	struct kb_px_port *ports;
	struct kb_px_endpoint *eps;
	char (*keys)[32];
	char (*cips)[48];
	char (*epips)[48];
};

static void world_make(struct world *w, size_t nsvc, size_t neps)
{
	w->nsvc = nsvc;
	w->neps = neps;
	w->svcs = calloc(nsvc, sizeof(*w->svcs));
	w->ports = calloc(nsvc, sizeof(*w->ports));
	w->eps = calloc(nsvc * neps, sizeof(*w->eps));
	w->keys = calloc(nsvc, sizeof(*w->keys));
	w->cips = calloc(nsvc, sizeof(*w->cips));
	w->epips = calloc(nsvc * neps, sizeof(*w->epips));
	if (!w->svcs || !w->ports || !w->eps || !w->keys || !w->cips ||
	    !w->epips) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < nsvc; i++) {
		/* zero-padded, so the keys sort in index order */
		snprintf(w->keys[i], sizeof(w->keys[i]), "bench/svc-%07zu", i);
		snprintf(w->cips[i], sizeof(w->cips[i]), "10.96.%zu.%zu",
		    (i + 1) / 250, (i + 1) % 250 + 1);
		for (size_t j = 0; j < neps; j++) {
			size_t k = i * neps + j;
			snprintf(w->epips[k], sizeof(w->epips[k]),
			    "10.%zu.%zu.%zu", 128 + k / 62500, (k / 250) % 250,
			    k % 250 + 1);
			w->eps[k].ip = w->epips[k];
			w->eps[k].port = 8080;
		}
		w->ports[i] = (struct kb_px_port){ .name = "http",
			.proto = KB_PX_TCP,
			.port = 80,
			.eps = &w->eps[i * neps],
			.neps = neps };
		w->svcs[i] = (struct kb_px_service){ .key = w->keys[i],
			.cluster_ip = w->cips[i],
			.affinity_timeout_s = 10800,
			.ports = &w->ports[i],
			.nports = 1 };
	}
}

static void world_free(struct world *w)
{
	free(w->svcs);
	free(w->ports);
	free(w->eps);
	free(w->keys);
	free(w->cips);
	free(w->epips);
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct result {
	double full_s, one_ms, cleanup_s, full_cpu_s, one_cpu_ms;
	bool ok;
};

/* The name of endpoint map `map` in the nft table: the backend names its
 * maps <map>-g<generation>; `map` itself when it is not found. */
static void nft_map_name(const char *map, char *out, size_t size)
{
	snprintf(out, size, "%s", map);
	FILE *f = popen("nft -t list table ip kubus-proxy 2>/dev/null", "r");
	if (f == NULL)
		return;
	char line[512], want[64];
	snprintf(want, sizeof(want), "map %s-g", map);
	while (fgets(line, sizeof(line), f)) {
		const char *p = line + strspn(line, " \t");
		if (strncmp(p, want, strlen(want)) == 0) {
			p += 4;
			snprintf(out, size, "%.*s", (int)strcspn(p, " {\n"), p);
		}
	}
	pclose(f);
}

/* The lines of the terse table listing that start with `start` and hold
 * `has`; -1 when it cannot be listed. */
static long nft_count(const char *start, const char *has)
{
	FILE *f = popen("nft -t list table ip kubus-proxy 2>/dev/null", "r");
	if (f == NULL)
		return -1;
	char line[512];
	long n = 0;
	while (fgets(line, sizeof(line), f)) {
		const char *p = line + strspn(line, " \t");
		if (!strncmp(p, start, strlen(start)) && strstr(p, has))
			n++;
	}
	return pclose(f) == 0 ? n : -1;
}

/* Count the elements of map `map` in the nft table (" : " per element);
 * -1 when it cannot be listed. */
static long nft_map_elems(const char *map, const char *must_have)
{
	char cmd[256], name[128];
	nft_map_name(map, name, sizeof(name));
	snprintf(cmd, sizeof(cmd), "nft list map ip kubus-proxy %s 2>&1", name);
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	char line[4096];
	long n = 0;
	bool found = must_have == NULL;
	while (fgets(line, sizeof(line), f)) {
		for (const char *p = line; (p = strstr(p, " : ")); p += 3)
			n++;
		if (must_have && strstr(line, must_have))
			found = true;
	}
	int st = pclose(f);
	if (st != 0 || !found)
		return -1;
	return n - 1; /* the typeof line has one too */
}

/* iptables: the number of KUBUS-SEP chains in the nat table, -1 when
 * `must_have` is missing or `must_not` is there (or no save). */
static long ipt_seps(const char *save, const char *must_have,
    const char *must_not)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "%s -t nat 2>&1", save);
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	char line[4096];
	long n = 0;
	bool found = must_have == NULL, bad = false;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, ":KUBUS-SEP-", 11))
			n++;
		if (must_have && strstr(line, must_have))
			found = true;
		if (must_not && strstr(line, must_not))
			bad = true;
	}
	int st = pclose(f);
	return st != 0 || !found || bad ? -1 : n;
}

/* Bad config must be refused by init, with a message. */
static bool init_refuses(const char *name, const char *yaml)
{
	char path[1024], err[256];
	const char *build = getenv("KUBUS_BUILD");
	snprintf(path, sizeof(path), "%s/plugins/kubus-%s.so",
	    build ? build : "build", name);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		return false;
	const struct kb_plugin *(*desc)(void) =
	    (const struct kb_plugin *(*)(void))dlsym(h, "kb_plugin_describe");
	const struct kb_plugin *p = desc ? desc() : NULL;
	kb_conf *conf =
	    kb_conf_parse_yaml(yaml, strlen(yaml), "bench", err, sizeof(err));
	kb_ctx ctx = { .api = &fake_api };
	void *st = NULL;
	int rc = p && conf ? p->init(&ctx, conf, &st) : 0;
	if (rc == 0 && st && p->fini)
		p->fini(st);
	kb_conf_free(conf);
	dlclose(h);
	return rc != 0;
}

static struct result run_backend(const char *name, const char *conf_yaml,
    struct world *w, int changes, bool check)
{
	struct result r = { 0 };
	char path[1024];
	const char *build = getenv("KUBUS_BUILD");
	snprintf(path, sizeof(path), "%s/plugins/kubus-%s.so",
	    build ? build : "build", name);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		fprintf(stderr, "%s: %s\n", name, dlerror());
		return r;
	}
	const struct kb_plugin *(*desc)(void) =
	    (const struct kb_plugin *(*)(void))dlsym(h, "kb_plugin_describe");
	const struct kb_plugin *p = desc ? desc() : NULL;
	if (p == NULL || p->kind != KB_KIND_PROXY_BACKEND || p->ops == NULL) {
		fprintf(stderr, "%s: not a proxy backend\n", name);
		dlclose(h);
		return r;
	}
	const struct kb_proxy_ops *ops = p->ops;
	kb_ctx ctx = { .api = &fake_api };
	void *st = NULL;
	kb_conf *conf = NULL;
	if (conf_yaml) {
		char err[256];
		conf = kb_conf_parse_yaml(conf_yaml, strlen(conf_yaml), "bench",
		    err, sizeof(err));
		if (conf == NULL) {
			fprintf(stderr, "%s: %s\n", name, err);
			dlclose(h);
			return r;
		}
	}
	int irc = p->init(&ctx, conf, &st);
	kb_conf_free(conf);
	if (irc != 0) {
		dlclose(h);
		return r;
	}
	ops->cleanup(st);
	struct kb_px_state s = { .size = sizeof(s),
		.svcs = w->svcs,
		.nsvcs = w->nsvc,
		.full = true,
		.service_cidr = "10.96.0.0/12",
		.node_ip = "192.0.2.1" };
	double t0 = now_s(), c0 = cpu_s();
	int rc = ops->sync(st, &s);
	r.full_s = now_s() - t0;
	r.full_cpu_s = cpu_s() - c0;
	fprintf(stderr,
	    "%s%s%s: full sync of %zu services x %zu endpoints: %.3f s (cpu %.3f s, rc=%d)\n",
	    name, conf_yaml ? " " : "", conf_yaml ? conf_yaml : "", w->nsvc,
	    w->neps, r.full_s, r.full_cpu_s, rc);
	bool is_nft = strcmp(name, "proxy-nftables") == 0;
	char map[32];
	snprintf(map, sizeof(map), "e%zut", w->neps);
	if (check && is_nft && rc == 0) {
		/* the layout: one element per endpoint in the shared map,
		 * and one rule that DNATs through it */
		char name[128], use[160];
		long n = nft_map_elems(map, NULL);
		nft_map_name(map, name, sizeof(name));
		snprintf(use, sizeof(use), "map @%s", name);
		long rules = nft_count("dnat ip to", use);
		if (n != (long)(w->nsvc * w->neps) || rules != 1) {
			fprintf(stderr,
			    "check: map %s has %ld elements, want %zu; %ld rules use it, want 1\n",
			    name, n, w->nsvc * w->neps, rules);
			rc = 1;
		}
	}
	bool is_ipt = strcmp(name, "proxy-iptables") == 0;
	const char *save = conf_yaml && strstr(conf_yaml, "legacy") ?
	    "iptables-legacy-save" :
	    "iptables-save";
	if (check && is_ipt && rc == 0) {
		long n = ipt_seps(save, NULL, NULL);
		if (n != (long)(w->nsvc * w->neps)) {
			fprintf(stderr,
			    "check: %s: %ld KUBUS-SEP chains, want %zu\n", save,
			    n, w->nsvc * w->neps);
			rc = 1;
		}
	}
	double *one = calloc((size_t)changes, sizeof(*one));
	double *onec = calloc((size_t)changes, sizeof(*onec));
	int done = 0;
	for (int c = 0; rc == 0 && c < changes; c++) {
		/* one endpoint of one service moves to a new address */
		size_t i = (w->nsvc / 2 + (size_t)c * 7919) % w->nsvc;
		size_t k = i * w->neps;
		char old[64];
		snprintf(old, sizeof(old), "--to-destination %s:8080",
		    w->epips[k]);
		/* a new address each time, also across backends that share
		 * the world (else a later backend's "change" is a no-op) */
		static int moves;
		int m = moves++;
		snprintf(w->epips[k], sizeof(w->epips[k]), "10.255.%d.%d",
		    m / 250 % 250, m % 250 + 1);
		const char *changed[] = { w->keys[i] };
		s.full = false;
		s.changed = changed;
		s.nchanged = 1;
		t0 = now_s();
		c0 = cpu_s();
		rc = ops->sync(st, &s);
		onec[done] = (cpu_s() - c0) * 1000;
		one[done++] = (now_s() - t0) * 1000;
		if (check && is_nft && rc == 0) {
			/* the moved endpoint is in, the old one out, and the
			 * map holds as many elements as before */
			char want[64];
			snprintf(want, sizeof(want), ": %s . 8080",
			    w->epips[k]);
			long n = nft_map_elems(map, want);
			if (n != (long)(w->nsvc * w->neps)) {
				fprintf(stderr,
				    "check: after moving an endpoint to %s, map %s has %ld elements (want %zu, -1: not found)\n",
				    w->epips[k], map, n, w->nsvc * w->neps);
				rc = 1;
			}
		}
		if (check && is_ipt && rc == 0) {
			/* a partial restore: the moved endpoint's chain is
			 * new, the old one gone, the others all there */
			char want[64];
			snprintf(want, sizeof(want), "--to-destination %s:8080",
			    w->epips[k]);
			long n = ipt_seps(save, want, old);
			if (n != (long)(w->nsvc * w->neps)) {
				fprintf(stderr,
				    "check: %s after moving an endpoint to %s: %ld KUBUS-SEP chains (want %zu, -1: new missing or old there)\n",
				    save, w->epips[k], n, w->nsvc * w->neps);
				rc = 1;
			}
		}
	}
	if (done) {
		qsort(one, (size_t)done, sizeof(*one), dcmp);
		qsort(onec, (size_t)done, sizeof(*onec), dcmp);
		r.one_ms = one[done / 2];
		r.one_cpu_ms = onec[done / 2];
		fprintf(stderr,
		    "%s: one changed endpoint: median %.2f ms (cpu %.2f ms), max %.2f ms over %d (rc=%d)\n",
		    name, r.one_ms, r.one_cpu_ms, one[done - 1], done, rc);
	}
	free(one);
	free(onec);
	if (check && is_nft && rc == 0) {
		/* a full sync over the live table (the proxy's retry, or a
		 * restart without cleanup) replaces it: one endpoint map, of
		 * the new generation, with every endpoint */
		char old[128], now[128];
		nft_map_name(map, old, sizeof(old));
		s.full = true;
		s.changed = NULL;
		s.nchanged = 0;
		rc = ops->sync(st, &s);
		nft_map_name(map, now, sizeof(now));
		long n = rc == 0 ? nft_map_elems(map, NULL) : -1;
		long maps = nft_count("map e", "-g");
		char use[160];
		snprintf(use, sizeof(use), "map @%s", now);
		long rules = nft_count("dnat ip to", use);
		if (rc != 0 || !strcmp(old, now) ||
		    n != (long)(w->nsvc * w->neps) || maps != 1 || rules != 1) {
			fprintf(stderr,
			    "check: second full sync: rc=%d, map %s then %s, %ld elements (want %zu), %ld endpoint maps (want 1), %ld rules use it (want 1)\n",
			    rc, old, now, n, w->nsvc * w->neps, maps, rules);
			rc = 1;
		}
	}
	t0 = now_s();
	int crc = ops->cleanup(st);
	r.cleanup_s = now_s() - t0;
	fprintf(stderr, "%s: cleanup %.3f s (rc=%d)\n", name, r.cleanup_s, crc);
	if (p->fini)
		p->fini(st);
	dlclose(h);
	r.ok = rc == 0 && crc == 0;
	return r;
}

int main(int argc, char **argv)
{
	size_t nsvc = 10000, neps = 10, ipt_nsvc = 1000;
	int changes = 9;
	const char *backends = "nft,ipt,legacy,us";
	bool smoke = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--services") && i + 1 < argc)
			nsvc = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--ipt-services") && i + 1 < argc)
			ipt_nsvc = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--endpoints") && i + 1 < argc)
			neps = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--changes") && i + 1 < argc)
			changes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--backends") && i + 1 < argc)
			backends = argv[++i];
		else if (!strcmp(argv[i], "--smoke")) {
			smoke = true;
			nsvc = 200;
			ipt_nsvc = 100;
			neps = 3;
			changes = 3;
		} else {
			fprintf(stderr,
			    "usage: bench-proxy [--services N] [--ipt-services N] [--endpoints M] [--changes K] [--backends nft,ipt,us] [--smoke]\n");
			return 2;
		}
	}
	if (ipt_nsvc > nsvc)
		ipt_nsvc = nsvc;
	if (nsvc < 1 || nsvc > 60000 || ipt_nsvc < 1 || neps < 1 ||
	    neps > 100 || changes < 1 || changes > 1000) {
		fprintf(stderr,
		    "services 1..60000, endpoints 1..100, changes 1..1000\n");
		return 2;
	}
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr,
		    "SKIP: needs root (a network namespace of its own)\n");
		printf("RESULT proxy skipped=1\n");
		return smoke ? 77 : 1;
	}
	/* as the kubus host does: a tool that exits early must not kill us */
	signal(SIGPIPE, SIG_IGN);
	if (system("ip link set lo up") != 0)
		fprintf(stderr, "cannot bring up lo\n");
	/* the userspace backend holds one socket per service port */
	struct rlimit rl = { 65536, 65536 };
	setrlimit(RLIMIT_NOFILE, &rl);
	struct world w;
	world_make(&w, nsvc, neps);
	if (smoke && strstr(backends, "ipt") &&
	    (!init_refuses("proxy-iptables", "mode: bogus") ||
		!init_refuses("proxy-iptables", "modes: legacy"))) {
		fprintf(stderr,
		    "check: proxy-iptables accepted a bad config\n");
		return 1;
	}
	struct result nft = { 0 }, nft_small = { 0 }, ipt = { 0 }, us = { 0 },
		      iptl = { 0 };
	bool fail = false;
	if (strstr(backends, "nft")) {
		nft = run_backend("proxy-nftables", NULL, &w, changes, smoke);
		fail |= !nft.ok;
	}
	if (strstr(backends, "ipt")) {
		/* iptables-nft's restore time grows faster than quadratically
		 * with the number of chains (1,000 services: ~10 s CPU, 2,000:
		 * ~70 s; 10,000 did not finish in 10 minutes), so it runs at
		 * ipt_nsvc, with nftables again at that size for the ratio.
		 * Every iptables sync is a full restore: one change shows it. */
		struct world ws;
		world_make(&ws, ipt_nsvc, neps);
		if (strstr(backends, "nft")) {
			nft_small = run_backend("proxy-nftables", NULL, &ws,
			    changes, smoke);
			fail |= !nft_small.ok;
		}
		ipt = run_backend("proxy-iptables", NULL, &ws, changes, smoke);
		fail |= !ipt.ok;
		world_free(&ws);
	}
	if (strstr(backends, "legacy")) {
		/* iptables-legacy-restore scales (nearly) linearly: it runs
		 * at N when the binaries are there */
		if (system("iptables-legacy-save >/dev/null 2>&1") == 0) {
			/* at most 3 changes: each partial restore
			 * rewrites the whole table (~1.4 s CPU at 10,000) */
			iptl = run_backend("proxy-iptables", "mode: legacy", &w,
			    changes < 3 ? changes : 3, smoke);
			fail |= !iptl.ok;
		} else {
			fprintf(stderr,
			    "iptables-legacy: not available, skipped\n");
		}
	}
	if (strstr(backends, "us")) {
		us = run_backend("proxy-userspace", NULL, &w, changes, smoke);
		fail |= !us.ok;
	}
	world_free(&w);
	double load[1] = { 0 };
	getloadavg(load, 1);
	printf("services=%zu endpoints=%zu load=%.1f nft_full_cpu_s=%.3f nft_one_cpu_ms=%.2f"
	       " | at %zu services: nft_full_s=%.3f nft_full_cpu_s=%.3f ipt_full_cpu_s=%.3f ipt_one_ms=%.1f ipt_one_cpu_ms=%.1f"
	       " | iptables-legacy at %zu: iptl_full_s=%.3f iptl_full_cpu_s=%.3f iptl_one_ms=%.1f iptl_one_cpu_ms=%.1f"
	       " | userspace at %zu: us_full_s=%.3f us_one_ms=%.2f\n",
	    nsvc, neps, load[0], nft.full_cpu_s, nft.one_cpu_ms, ipt_nsvc,
	    nft_small.full_s, nft_small.full_cpu_s, ipt.full_cpu_s, ipt.one_ms,
	    ipt.one_cpu_ms, nsvc, iptl.full_s, iptl.full_cpu_s, iptl.one_ms,
	    iptl.one_cpu_ms, nsvc, us.full_s, us.one_ms);
	/* nft_* at `services`; ipt_full_s and the ratio at ipt_services
	 * (nftables timed again at that size) */
	printf("RESULT proxy nft_full_s=%.3f nft_one_ms=%.2f ipt_full_s=%.3f ipt_services=%zu ratio=%.1f"
	       " nft_full_cpu_s=%.3f nft_one_cpu_ms=%.2f ipt_one_ms=%.1f iptl_full_s=%.3f iptl_one_ms=%.1f iptl_ratio=%.1f\n",
	    nft.full_s, nft.one_ms, ipt.full_s, ipt_nsvc,
	    nft_small.full_s > 0 ? ipt.full_s / nft_small.full_s : 0.0,
	    nft.full_cpu_s, nft.one_cpu_ms, ipt.one_ms, iptl.full_s,
	    iptl.one_ms, nft.full_s > 0 ? iptl.full_s / nft.full_s : 0.0);
	return fail ? 1 : 0;
}
