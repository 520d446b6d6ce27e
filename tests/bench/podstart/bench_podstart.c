/* tests/bench/podstart/bench_podstart.c — pod start on one node with
 * runtime-runc against bare `runc run -d` + CNI ADD of the same busybox
 * bundle, measured in one run.
 *
 * Everything happens inside a network namespace the benchmark makes
 * (kbt-ps-<pid>, loopback only, no route out): it enters it before any
 * thread starts, so the CNI bridges, veths and pod namespaces of both parts
 * live there and go with it.
 *
 *   bare, sequential  N times: `ip netns add`, CNI ADD (bridge + host-local,
 *                     then loopback), `runc run -d`; then per container
 *                     `runc delete --force`, CNI DEL, `ip netns del`. The
 *                     per-container figure (the issue's ~0.19 s with delete).
 *   bare, at once     the same N start chains started together (one child
 *                     process each): per-chain time to running, p50/p99.
 *                     This is the like-for-like reference for pods created
 *                     at once.
 *   kubus             an in-process host (store-lmdb, apiserver, kubelet
 *                     with runtime-runc and CNI); one warm-up pod, then N
 *                     pods (already bound) created at once; time from each
 *                     create to status.phase Running seen by an informer
 *                     (a watch); p50/p99. Then every pod is deleted and the
 *                     benchmark waits until the kubelet has removed them.
 *
 *   bench-podstart [--count N] [--bare-only] [--smoke]
 *
 * Last line:
 *   RESULT podstart p50_s=N p99_s=N bare_s=N ratio=<p99_s/bare_s>
 * where bare_s is the bare p99 with all N at once. Needs root, runc, the
 * CNI plugins in /usr/lib/cni and /bin/busybox; exit 1 when anything
 * failed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kubus/client.h>
#include <kubus/kubus.h>
#include <kubus/mp.h>

#include "harness.h"

#define CNI_DIR "/usr/lib/cni"
#define MAXN 256

extern char **environ;

static char base[512], hostns[64];
static int count = 30;

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

/* The q-quantile (nearest rank) of v[n], in seconds. */
static double quant(int64_t *v, int n, double q)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp64);
	int i = (int)(q * n + 0.999999) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return (double)v[i] / 1e9;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	char *out = NULL;
	int rc = kbt_run(cmd, &out);
	if (rc != 0)
		fprintf(stderr, "bench-podstart: `%s` failed (%d): %s\n", cmd,
		    rc, out ? out : "");
	free(out);
	return rc;
}

/* Run argv with env (NULL: ours), stdin from `in` (may be NULL), stdout
 * and stderr to `out` (a file, may be NULL for /dev/null); its exit
 * status, or -1. */
static int run(const char *const *argv, char *const *env, const char *in,
    const char *out)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null",
	    O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
	    O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv,
	    env ? env : environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static int cni(const char *cmd, const char *plugin, const char *conf,
    const char *id, const char *netns, const char *ifname)
{
	char path[256], e_cmd[64], e_id[128], e_ns[256], e_if[64],
	    e_path[64] = "CNI_PATH=" CNI_DIR, out[600];
	snprintf(path, sizeof(path), "%s/%s", CNI_DIR, plugin);
	snprintf(e_cmd, sizeof(e_cmd), "CNI_COMMAND=%s", cmd);
	snprintf(e_id, sizeof(e_id), "CNI_CONTAINERID=%s", id);
	snprintf(e_ns, sizeof(e_ns), "CNI_NETNS=%s", netns);
	snprintf(e_if, sizeof(e_if), "CNI_IFNAME=%s", ifname);
	snprintf(out, sizeof(out), "%s/cni-%s.out", base, id);
	char *env[] = { e_cmd, e_id, e_ns, e_if, e_path, NULL };
	const char *argv[] = { path, NULL };
	int rc = run(argv, env, conf, out);
	if (rc != 0) {
		char *t = kbt_slurp(out);
		fprintf(stderr, "bench-podstart: CNI %s %s for %s: %s\n", cmd,
		    plugin, id, t ? t : "?");
		free(t);
	}
	return rc;
}

static void bundle_config(int i, const char *netns)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/b%d/config.json", base, i);
	FILE *fp = fopen(path, "w");
	if (fp == NULL)
		return;
	fprintf(fp,
	    "{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":false,"
	    "\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sleep\",\"3600\"],"
	    "\"env\":[\"PATH=/bin\"],\"cwd\":\"/\",\"capabilities\":{"
	    "\"bounding\":[\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
	    "\"effective\":[\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
	    "\"permitted\":[\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"]},"
	    "\"noNewPrivileges\":true},"
	    "\"root\":{\"path\":\"%s/rootfs\",\"readonly\":true},"
	    "\"hostname\":\"bare%d\",\"mounts\":["
	    "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	    "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
	    "\"options\":[\"nosuid\",\"strictatime\",\"mode=755\","
	    "\"size=65536k\"]},"
	    "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\","
	    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]}],"
	    "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"ipc\"},"
	    "{\"type\":\"uts\"},{\"type\":\"mount\"},{\"type\":\"network\","
	    "\"path\":\"%s\"}],\"cgroupsPath\":\"/kbt-ps-%d/bare%d\","
	    "\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]}}}"
	    "\n",
	    base, i, netns, (int)getpid(), i);
	fclose(fp);
}

static const char *RUNC = "/usr/sbin/runc";

/* One bare start: netns, CNI ADD bridge + loopback, runc run -d. */
static int bare_start(int i)
{
	char ns[96], nsp[160], id[64], bundle[600], pidf[700], conf[600],
	    lo[600], log[700];
	snprintf(ns, sizeof(ns), "%s-c%d", hostns, i);
	snprintf(nsp, sizeof(nsp), "/run/netns/%s", ns);
	snprintf(id, sizeof(id), "kbt-ps-bare%d", i);
	snprintf(bundle, sizeof(bundle), "%s/b%d", base, i);
	snprintf(pidf, sizeof(pidf), "%s/pid", bundle);
	snprintf(log, sizeof(log), "%s/runc.log", bundle);
	snprintf(conf, sizeof(conf), "%s/bridge.conf", base);
	snprintf(lo, sizeof(lo), "%s/lo.conf", base);
	const char *ipadd[] = { "/usr/sbin/ip", "netns", "add", ns, NULL };
	if (run(ipadd, NULL, NULL, NULL) != 0)
		return -1;
	if (cni("ADD", "bridge", conf, id, nsp, "eth0") != 0 ||
	    cni("ADD", "loopback", lo, id, nsp, "lo") != 0)
		return -1;
	char root[600];
	snprintf(root, sizeof(root), "%s/runc", base);
	const char *runc[] = { RUNC, "--root", root, "--log", log, "run", "-d",
		"--pid-file", pidf, "--bundle", bundle, id, NULL };
	return run(runc, NULL, NULL, NULL);
}

static int bare_delete(int i)
{
	char ns[96], nsp[160], id[64], conf[600], lo[600], root[600];
	snprintf(ns, sizeof(ns), "%s-c%d", hostns, i);
	snprintf(nsp, sizeof(nsp), "/run/netns/%s", ns);
	snprintf(id, sizeof(id), "kbt-ps-bare%d", i);
	snprintf(conf, sizeof(conf), "%s/bridge.conf", base);
	snprintf(lo, sizeof(lo), "%s/lo.conf", base);
	snprintf(root, sizeof(root), "%s/runc", base);
	const char *del[] = { RUNC, "--root", root, "delete", "--force", id,
		NULL };
	int rc = run(del, NULL, NULL, NULL);
	rc |= cni("DEL", "loopback", lo, id, nsp, "lo");
	rc |= cni("DEL", "bridge", conf, id, nsp, "eth0");
	const char *ipdel[] = { "/usr/sbin/ip", "netns", "del", ns, NULL };
	rc |= run(ipdel, NULL, NULL, NULL);
	return rc;
}

struct bare {
	double seq_start_s, seq_del_s; /* means per container */
	double p50_s, p99_s;           /* all at once */
	int errors;
};

static void bare_bench(struct bare *b)
{
	int64_t st[MAXN], dl[MAXN];
	for (int i = 0; i < count; i++) {
		int64_t t0 = now_ns();
		if (bare_start(i) != 0)
			b->errors++;
		st[i] = now_ns() - t0;
	}
	for (int i = 0; i < count; i++) {
		int64_t t0 = now_ns();
		if (bare_delete(i) != 0)
			b->errors++;
		dl[i] = now_ns() - t0;
	}
	int64_t s = 0, d = 0;
	for (int i = 0; i < count; i++) {
		s += st[i];
		d += dl[i];
	}
	b->seq_start_s = (double)s / count / 1e9;
	b->seq_del_s = (double)d / count / 1e9;
	/* All at once: one child per chain, timed from the common start to
	 * each child's exit. */
	pid_t pids[MAXN];
	int64_t t0 = now_ns(), lat[MAXN];
	for (int i = 0; i < count; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(bare_start(i) == 0 ? 0 : 1);
	}
	int done = 0;
	while (done < count) {
		int ws;
		pid_t p = waitpid(-1, &ws, 0);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			break;
		for (int i = 0; i < count; i++)
			if (pids[i] == p) {
				lat[done++] = now_ns() - t0;
				if (!WIFEXITED(ws) || WEXITSTATUS(ws))
					b->errors++;
			}
	}
	for (int i = 0; i < count; i++)
		if (bare_delete(i) != 0)
			b->errors++;
	b->p50_s = quant(lat, done, 0.5);
	b->p99_s = quant(lat, done, 0.99);
}

/* --- kubus ------------------------------------------------------------------ */

struct kub {
	pthread_mutex_t mu;
	int64_t created[MAXN], running[MAXN];
	bool warm_running;
};

static int pod_index(const msgpack_object *o)
{
	const char *name;
	size_t len;
	if (!kb_mp_str(o, "metadata.name", &name, &len) || len < 4 ||
	    strncmp(name, "ps-", 3))
		return -2;
	if (len == 7 && !strncmp(name, "ps-warm", 7))
		return -1;
	return atoi(name + 3);
}

static void seen(void *arg, const msgpack_object *o)
{
	struct kub *k = arg;
	if (!kb_mp_streq(o, "status.phase", "Running"))
		return;
	int i = pod_index(o);
	int64_t t = now_ns();
	pthread_mutex_lock(&k->mu);
	if (i == -1)
		k->warm_running = true;
	else if (i >= 0 && i < count && k->running[i] == 0)
		k->running[i] = t;
	pthread_mutex_unlock(&k->mu);
}

static void on_add(void *arg, const msgpack_object *o)
{
	seen(arg, o);
}

static void on_update(void *arg, const msgpack_object *old,
    const msgpack_object *o)
{
	seen(arg, o);
}

static void on_del(void *arg, const msgpack_object *o)
{
}

static int create_pod(kb_ctx *c, const char *name)
{
	kb_body *b = kb_mp_body("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, "
				"s:[{s:s, s:s, s:s, s:[s, s]}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
	    "namespace", "default", "spec", "nodeName", "bench-node",
	    "terminationGracePeriodSeconds", 1, "containers", "name", "main",
	    "image", "busybox", "imagePullPolicy", "Never", "command", "sleep",
	    "3600");
	kb_msg *rep = NULL;
	int rc = kb_api_create(c, &KB_GVR_PODS, "default", b, &rep);
	if (rc)
		fprintf(stderr, "bench-podstart: create %s: %s\n", name,
		    kb_strerror(rc));
	kb_msg_free(rep);
	return rc;
}

static size_t pods_left(kb_ctx *c)
{
	kb_msg *rep = NULL;
	size_t n = (size_t)-1;
	if (kb_api_list(c, &KB_GVR_PODS, "default", NULL, NULL, &rep) == 0) {
		const msgpack_object *items =
		    kb_mp_get(kb_msg_body(rep), "items");
		n = items && items->type == MSGPACK_OBJECT_ARRAY ?
		    items->via.array.size :
		    0;
	}
	kb_msg_free(rep);
	return n;
}

static int kubus_bench(double *p50, double *p99)
{
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {log_level: warn}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-lmdb\n"
	    "    config: {sync: false}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "  - name: kubelet\n"
	    "    use: kubelet\n"
	    "    config:\n"
	    "      node_name: bench-node\n"
	    "      runtime: runtime-runc\n"
	    "      runtime_config: {cgroup_parent: /kbt-ps-%d-kubus}\n"
	    "      network: cni\n"
	    "      pod_cidr: 10.252.0.0/24\n"
	    "      bridge: kbtps1\n"
	    "      sync_period: 1s\n",
	    (int)getpid());
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	if (h == NULL) {
		fprintf(stderr, "bench-podstart: host: %s\n", err);
		return -1;
	}
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *c = kbt_client(h, "bench", "plugin:bench", groups, 1);
	struct kub k;
	memset(&k, 0, sizeof(k));
	pthread_mutex_init(&k.mu, NULL);
	struct kb_informer_opts o = { .ns = "default" };
	static const struct kb_informer_handlers hd = { on_add, on_update,
		on_del };
	struct kb_informer *inf = kb_informer_new(c, &KB_GVR_PODS, &o, &hd, &k);
	int rc = -1;
	if (inf == NULL || kb_informer_start(inf) != 0 ||
	    !kb_informer_wait_synced(inf, 10000)) {
		fprintf(stderr,
		    "bench-podstart: the pod informer did not "
		    "sync\n");
		goto out;
	}
	/* Warm-up: the node registers, the image is unpacked once. */
	int64_t end = now_ns() + 60 * 1000000000LL;
	if (create_pod(c, "ps-warm") != 0)
		goto out;
	while (!k.warm_running && now_ns() < end)
		usleep(20000);
	if (!k.warm_running) {
		fprintf(stderr,
		    "bench-podstart: the warm-up pod did not run "
		    "within 60 s\n");
		goto out_delete;
	}
	char name[32];
	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "ps-%d", i);
		pthread_mutex_lock(&k.mu);
		k.created[i] = now_ns();
		pthread_mutex_unlock(&k.mu);
		if (create_pod(c, name) != 0)
			goto out_delete;
	}
	end = now_ns() + 120 * 1000000000LL;
	int running = 0;
	while (now_ns() < end) {
		running = 0;
		pthread_mutex_lock(&k.mu);
		for (int i = 0; i < count; i++)
			running += k.running[i] != 0;
		pthread_mutex_unlock(&k.mu);
		if (running == count)
			break;
		usleep(20000);
	}
	if (running < count) {
		fprintf(stderr,
		    "bench-podstart: %d of %d pods running after "
		    "120 s\n",
		    running, count);
		goto out_delete;
	}
	int64_t lat[MAXN];
	for (int i = 0; i < count; i++)
		lat[i] = k.running[i] - k.created[i];
	*p50 = quant(lat, count, 0.5);
	*p99 = quant(lat, count, 0.99);
	rc = 0;
out_delete:
	for (int i = -1; i < count; i++) {
		if (i < 0)
			snprintf(name, sizeof(name), "ps-warm");
		else
			snprintf(name, sizeof(name), "ps-%d", i);
		kb_body *opt = kb_mp_body("{s:i}", "gracePeriodSeconds", 0);
		kb_api_delete(c, &KB_GVR_PODS, "default", name, opt, NULL);
	}
	end = now_ns() + 90 * 1000000000LL;
	size_t left;
	while ((left = pods_left(c)) != 0 && now_ns() < end)
		usleep(100000);
	if (left != 0) {
		fprintf(stderr,
		    "bench-podstart: %zu pods not removed by the "
		    "kubelet within 90 s\n",
		    left);
		rc = -1;
	}
out:
	if (inf)
		kb_informer_free(inf);
	/* Anything the kubelet left running would lose its bundle with the
	 * data dir: remove it first. */
	sh("r=%s/runc; for id in $(runc --root $r list -q 2>/dev/null); do "
	   "runc --root $r delete --force $id; done; true",
	    kbt_host_data_dir(h));
	kbt_host_stop(h);
	pthread_mutex_destroy(&k.mu);
	return rc;
}

/* --- setup ------------------------------------------------------------------ */

static void make_rootfs(const char *dir)
{
	sh("mkdir -p %s/bin %s/etc %s/proc %s/sys %s/dev %s/tmp && "
	   "cp /bin/busybox %s/bin/busybox && for a in sleep sh; do "
	   "ln -sf busybox %s/bin/$a; done",
	    dir, dir, dir, dir, dir, dir, dir, dir);
}

static void cleanup(void)
{
	for (int i = 0; i < count; i++) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "ip netns del %s-c%d 2>/dev/null",
		    hostns, i);
		char *o = NULL;
		kbt_run(cmd, &o);
		free(o);
	}
	if (*base) {
		sh("for id in $(runc --root %s/runc list -q 2>/dev/null); do "
		   "runc --root %s/runc delete --force $id; done; true",
		    base, base);
		kbt_rmrf(base);
	}
	sh("for m in /sys/fs/cgroup/*/; do for d in $m/kbt-ps-%d $m/kbt-ps-%d-kubus; do "
	   "[ -d $d ] && find $d -depth -type d -exec rmdir {} \\; ; done; "
	   "done 2>/dev/null; true",
	    (int)getpid(), (int)getpid());
	sh("ip netns del %s 2>/dev/null; true", hostns);
}

int main(int argc, char **argv)
{
	bool bare_only = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--bare-only"))
			bare_only = true;
		else if (!strcmp(argv[i], "--smoke"))
			count = 3;
		else {
			fprintf(stderr,
			    "usage: bench-podstart [--count N] "
			    "[--bare-only] [--smoke]\n");
			return 2;
		}
	}
	if (count < 1 || count > MAXN) {
		fprintf(stderr, "bench-podstart: --count is 1..%d\n", MAXN);
		return 2;
	}
	if (geteuid() != 0 || access(RUNC, X_OK) != 0 ||
	    access(CNI_DIR "/bridge", X_OK) != 0 ||
	    access("/bin/busybox", X_OK) != 0) {
		fprintf(stderr,
		    "bench-podstart: needs root, %s, "
		    "%s/bridge and /bin/busybox\n",
		    RUNC, CNI_DIR);
		return 1;
	}
	snprintf(hostns, sizeof(hostns), "kbt-ps-%d", (int)getpid());
	/* Our own network namespace, entered before any thread exists. */
	if (sh("ip netns add %s && ip -n %s link set lo up", hostns, hostns) !=
	    0)
		return 1;
	char nsp[128];
	snprintf(nsp, sizeof(nsp), "/run/netns/%s", hostns);
	int fd = open(nsp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
		fprintf(stderr, "bench-podstart: cannot enter %s: %s\n", nsp,
		    strerror(errno));
		sh("ip netns del %s", hostns);
		return 1;
	}
	close(fd);
	char *t = kbt_mkdtemp("kbt-ps");
	snprintf(base, sizeof(base), "%s", t);
	free(t);
	char rootfs[600];
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", base);
	make_rootfs(rootfs);
	sh("mkdir -p %s/runc %s/ipam", base, base);
	for (int i = 0; i < count; i++) {
		sh("mkdir -p %s/b%d", base, i);
		char ns[128];
		snprintf(ns, sizeof(ns), "/run/netns/%s-c%d", hostns, i);
		bundle_config(i, ns);
	}
	sh("printf '%%s' '{\"cniVersion\":\"1.0.0\",\"name\":\"kbt-ps\","
	   "\"type\":\"bridge\",\"bridge\":\"kbtps0\",\"isGateway\":true,"
	   "\"ipMasq\":false,\"ipam\":{\"type\":\"host-local\",\"ranges\":"
	   "[[{\"subnet\":\"10.251.0.0/24\"}]],\"dataDir\":\"%s/ipam\"}}' > "
	   "%s/bridge.conf",
	    base, base);
	sh("printf '%%s' '{\"cniVersion\":\"1.0.0\",\"name\":\"lo\","
	   "\"type\":\"loopback\"}' > %s/lo.conf",
	    base);

	struct bare b = { 0 };
	bare_bench(&b);
	fprintf(stderr,
	    "bench-podstart: bare runc run -d + CNI ADD, %d containers: "
	    "sequential %.3f s start + %.3f s delete each; all at once p50 "
	    "%.3f s p99 %.3f s; errors %d\n",
	    count, b.seq_start_s, b.seq_del_s, b.p50_s, b.p99_s, b.errors);
	double p50 = 0, p99 = 0;
	int rc = b.errors ? 1 : 0;
	if (!bare_only && kubus_bench(&p50, &p99) != 0)
		rc = 1;
	cleanup();
	printf("bare_seq_start_s=%.3f bare_seq_delete_s=%.3f bare_p50_s=%.3f "
	       "bare_p99_s=%.3f count=%d\n",
	    b.seq_start_s, b.seq_del_s, b.p50_s, b.p99_s, count);
	if (bare_only || rc)
		printf("RESULT podstart p50_s=NA p99_s=NA bare_s=%.3f "
		       "ratio=NA\n",
		    b.p99_s);
	else
		printf("RESULT podstart p50_s=%.3f p99_s=%.3f bare_s=%.3f "
		       "ratio=%.2f\n",
		    p50, p99, b.p99_s, b.p99_s > 0 ? p99 / b.p99_s : 0);
	return rc;
}
