/* tests/bench/cluster/bench_cluster.c — what a Kubus cluster costs: the
 * idle memory of a whole single-node cluster, and a control plane holding
 * N hollow workers, each its own `kubus run` process joined over tls+tcp
 * (mutual TLS) on loopback.
 *
 *   single   `kubus run -c configs/single-node.yaml` (its kubelet on
 *            runtime-fake so it runs anywhere), idle for --single-idle
 *            seconds: the RSS of the kubus process (and any children).
 *   cp       `kubus run -c configs/control-plane.yaml` (store-lmdb with
 *            sync, API server, every controller, scheduler, DNS), then
 *            `kubus join` + `kubus run` of N/2 and then N workers (the
 *            kubelet on runtime-fake, shipped defaults otherwise: Lease
 *            renewed every 10 s, status every minute). At 0, N/2 and N
 *            Ready nodes the control plane idles --idle seconds: its RSS
 *            at the end and its CPU over the window (from /proc).
 *   deploy   `kubectl apply` of a --replicas Deployment until
 *            availableReplicas = replicas (polled through the bus every
 *            500 ms).
 *
 * Memory details (smaps_rollup, anon/file, threads) go to stderr for each
 * measurement so a figure over its goal says where it sits.
 *
 *   bench-cluster [--workers N] [--replicas N] [--idle S] [--single-idle S]
 *                 [--timeout S] [--join-parallel N] [--smoke]
 *                 [--bare-workers] [--skip-single]
 *
 * --bare-workers: the workers join with no plugins at all (bus connections
 * only, no Node), to tell the control plane's cost per connection from its
 * cost per Node; no deployment then, and the last line is
 * `RESULT cluster-bare …`.
 *
 * Last line:
 *   RESULT cluster idle_rss_mb=N cp_rss_mb_200=N cp_cpu_200=N deploy_s=N
 * (cp_*_200 are at --workers nodes; cp_cpu in cores). Goals (issue 9):
 * idle_rss_mb < 30, cp_rss_mb_200 < 100, cp_cpu_200 < 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <kubus/client.h>

#include "harness.h"

#define MAX_WORKERS 1000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* SIGTERM, then SIGKILL after ms; reaped either way. */
static void stop_pid(pid_t pid, int ms)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	if (kbt_wait_pid(pid, ms) < 0)
		kbt_kill(pid);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "bench-cluster: cannot write %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
}

/* --- /proc ------------------------------------------------------------------ */

/* A "Field:  N kB" of /proc/PID/status or smaps_rollup, in kB; -1. */
static long proc_kb(pid_t pid, const char *file, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	FILE *f = fopen(path, "r");
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

/* utime + stime of pid, in clock ticks; its parent in *ppid. -1. */
static long long proc_ticks(pid_t pid, pid_t *ppid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after "pid (comm) ": state ppid … field 14 utime, 15 stime */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	char state;
	int pp;
	unsigned long long ut, st;
	if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		&state, &pp, &ut, &st) != 4)
		return -1;
	if (ppid)
		*ppid = pp;
	return (long long)(ut + st);
}

/* pid and its descendants (one level is what kubus makes: isolated
 * plugins). */
static int tree(pid_t root, pid_t *out, int max)
{
	int n = 0;
	out[n++] = root;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < max) {
		pid_t pid = (pid_t)atoi(e->d_name), pp = 0;
		if (pid <= 0 || pid == root)
			continue;
		if (proc_ticks(pid, &pp) >= 0)
			for (int i = 0; i < n; i++)
				if (pp == out[i]) {
					out[n++] = pid;
					break;
				}
	}
	if (d)
		closedir(d);
	return n;
}

static long tree_rss_kb(pid_t root)
{
	pid_t p[64];
	int n = tree(root, p, 64);
	long kb = 0;
	for (int i = 0; i < n; i++) {
		long v = proc_kb(p[i], "status", "VmRSS");
		kb += v > 0 ? v : 0;
	}
	return kb;
}

static long long tree_ticks(pid_t root)
{
	pid_t p[64];
	int n = tree(root, p, 64);
	long long t = 0;
	for (int i = 0; i < n; i++) {
		long long v = proc_ticks(p[i], NULL);
		t += v > 0 ? v : 0;
	}
	return t;
}

/* Where a process's memory is, to stderr. */
static void mem_detail(const char *what, pid_t pid)
{
	fprintf(stderr,
	    "%s: VmRSS %ld kB (RssAnon %ld, RssFile %ld, RssShmem %ld), "
	    "VmSize %ld kB, VmData %ld kB, Threads %ld; smaps_rollup Pss_Anon "
	    "%ld kB, Pss_File %ld kB\n",
	    what, proc_kb(pid, "status", "VmRSS"),
	    proc_kb(pid, "status", "RssAnon"),
	    proc_kb(pid, "status", "RssFile"),
	    proc_kb(pid, "status", "RssShmem"),
	    proc_kb(pid, "status", "VmSize"), proc_kb(pid, "status", "VmData"),
	    proc_kb(pid, "status", "Threads"),
	    proc_kb(pid, "smaps_rollup", "Pss_Anon"),
	    proc_kb(pid, "smaps_rollup", "Pss_File"));
}

/* The biggest resident mappings of pid (from /proc/PID/smaps), to
 * stderr: which file or [heap]/[stack]/anon region holds the memory. */
static void top_mappings(pid_t pid, int top)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	struct map {
		char name[160];
		long rss, count;
	} m[256];
	int nm = 0;
	char cur[160] = "";
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char name[400] = "";
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %399[^\n]", &lo, &hi,
			name) >= 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			char *s = name;
			while (*s == ' ')
				s++;
			const char *b = strrchr(s, '/');
			snprintf(cur, sizeof(cur), "%.150s",
			    *s ? (b ? b + 1 : s) : "[anon]");
			continue;
		}
		long kb;
		if (sscanf(line, "Rss: %ld kB", &kb) == 1 && kb > 0) {
			int i;
			for (i = 0; i < nm; i++)
				if (!strcmp(m[i].name, cur))
					break;
			if (i == nm && nm < 256) {
				snprintf(m[nm].name, sizeof(m[nm].name), "%s",
				    cur);
				m[nm].rss = m[nm].count = 0;
				nm++;
			}
			if (i < nm) {
				m[i].rss += kb;
				m[i].count++;
			}
		}
	}
	fclose(f);
	for (int k = 0; k < top && k < nm; k++) {
		int best = k;
		for (int i = k + 1; i < nm; i++)
			if (m[i].rss > m[best].rss)
				best = i;
		struct map t = m[k];
		m[k] = m[best];
		m[best] = t;
		fprintf(stderr, "    %7ld kB in %4ld mapping(s): %s\n",
		    m[k].rss, m[k].count, m[k].name);
	}
}

/* --- the API, through the bus ------------------------------------------------ */

struct dstat {
	int64_t gen, observed, replicas, updated, ready, available;
};

static bool deploy_status(kb_ctx *c, struct dstat *s)
{
	kb_msg *rep = NULL;
	memset(s, 0, sizeof(*s));
	if (kb_api_get(c, &KB_GVR_DEPLOYMENTS, "default", "bench", &rep) != 0) {
		kb_msg_free(rep);
		return false;
	}
	const msgpack_object *o = kb_msg_body(rep);
	kb_mp_int(o, "metadata.generation", &s->gen);
	kb_mp_int(o, "status.observedGeneration", &s->observed);
	kb_mp_int(o, "status.replicas", &s->replicas);
	kb_mp_int(o, "status.updatedReplicas", &s->updated);
	kb_mp_int(o, "status.readyReplicas", &s->ready);
	kb_mp_int(o, "status.availableReplicas", &s->available);
	kb_msg_free(rep);
	return true;
}

/* --- the run ------------------------------------------------------------------ */

static struct {
	int workers, replicas, idle_s, single_idle_s, timeout_s, join_par;
	bool bare, skip_single;
	char *dir;
	pid_t single, cp, w[MAX_WORKERS];
	struct kbt_host *adm;
	kb_ctx *c;
	int cp_bus_port, cp_api_port;
	char cp_dir[512], cp_log[600];
	char token[64], hash[128];
} B;

static void cleanup(void)
{
	if (B.adm)
		kbt_host_stop(B.adm);
	B.adm = NULL;
	for (int i = 0; i < MAX_WORKERS; i++)
		if (B.w[i] > 0) {
			kill(B.w[i], SIGKILL);
		}
	for (int i = 0; i < MAX_WORKERS; i++)
		if (B.w[i] > 0) {
			kbt_kill(B.w[i]);
			B.w[i] = 0;
		}
	if (B.single > 0)
		kbt_kill(B.single);
	if (B.cp > 0)
		stop_pid(B.cp, 5000);
	B.single = B.cp = 0;
	if (B.dir)
		kbt_rmrf(B.dir);
	free(B.dir);
	B.dir = NULL;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench-cluster: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	if (B.cp_log[0]) {
		char *t = kbt_slurp(B.cp_log);
		if (t) {
			size_t n = strlen(t);
			fprintf(stderr,
			    "---- control plane log (tail) ----\n%s\n",
			    n > 3000 ? t + n - 3000 : t);
			free(t);
		}
	}
	cleanup();
	exit(1);
}

/* Idle for `s` seconds: CPU of the tree over the window (cores), RSS at
 * its end (MiB). */
static void idle_measure(pid_t pid, int s, double *cpu, double *rss_mb)
{
	long hz = sysconf(_SC_CLK_TCK);
	long long t0 = tree_ticks(pid);
	int64_t w0 = now_ms();
	sleep_ms(s * 1000);
	long long t1 = tree_ticks(pid);
	int64_t w1 = now_ms();
	*cpu = (double)(t1 - t0) / (double)hz / ((double)(w1 - w0) / 1000);
	*rss_mb = (double)tree_rss_kb(pid) / 1024;
}

static double measure_single(void)
{
	char dir[600], log[700], kp[512], cfg[600], api[64], rt[64];
	snprintf(dir, sizeof(dir), "%s/single", B.dir);
	snprintf(log, sizeof(log), "%s/single.log", B.dir);
	snprintf(kp, sizeof(kp), "%s/kubus", kbt_build_dir());
	snprintf(cfg, sizeof(cfg), "%s/configs/single-node.yaml",
	    kbt_src_dir());
	snprintf(api, sizeof(api), "apiserver.listen=127.0.0.1:%d",
	    kbt_free_port());
	snprintf(rt, sizeof(rt), "kubelet.runtime=runtime-fake");
	char *argv[] = { kp, "run", "-c", cfg, "--data-dir", dir, "--set", api,
		"--set", rt, NULL };
	B.single = kbt_spawn_tied(argv, log);
	char *l = kbt_wait_file(log, "host running", 60000);
	if (l == NULL)
		die("single-node host did not start (log %s)", log);
	free(l);
	double cpu, rss;
	idle_measure(B.single, B.single_idle_s, &cpu, &rss);
	fprintf(stderr,
	    "single node (configs/single-node.yaml, kubelet on runtime-fake): "
	    "%.1f MiB RSS after %d s idle, CPU %.3f cores\n",
	    rss, B.single_idle_s, cpu);
	mem_detail("  single", B.single);
	top_mappings(B.single, 8);
	stop_pid(B.single, 10000);
	B.single = 0;
	return rss;
}

static void cp_start(void)
{
	snprintf(B.cp_dir, sizeof(B.cp_dir), "%s/cp", B.dir);
	snprintf(B.cp_log, sizeof(B.cp_log), "%s/cp.log", B.dir);
	B.cp_bus_port = kbt_free_port();
	B.cp_api_port = kbt_free_port();
	mkdir(B.cp_dir, 0700);
	char tok[128] = "", *out = NULL;
	if (kbt_kubus(&out,
		"token create --user bench --groups system:masters "
		"--data-dir %s",
		B.cp_dir) != 0)
		die("token create: %s", out ? out : "");
	sscanf(out, "%127s", tok);
	free(out);
	char kp[512], cfg[600], bus[96], api[64], dns[64];
	snprintf(kp, sizeof(kp), "%s/kubus", kbt_build_dir());
	snprintf(cfg, sizeof(cfg), "%s/configs/control-plane.yaml",
	    kbt_src_dir());
	snprintf(bus, sizeof(bus), "bus.listen[1]=tls+tcp://127.0.0.1:%d",
	    B.cp_bus_port);
	snprintf(api, sizeof(api), "apiserver.listen=127.0.0.1:%d",
	    B.cp_api_port);
	snprintf(dns, sizeof(dns), "dns.listen[0]=127.0.0.1:%d", kbt_free_port());
	char *argv[] = { kp, "run", "-c", cfg, "--data-dir", B.cp_dir, "--set",
		bus, "--set", api, "--set", dns, NULL };
	B.cp = kbt_spawn_tied(argv, B.cp_log);
	char *l = kbt_wait_file(B.cp_log, "host running", 60000);
	if (l == NULL)
		die("control plane did not start");
	free(l);
	char y[2048], err[1024];
	snprintf(y, sizeof(y),
	    "host: {name: bench, log_level: warn}\n"
	    "bus: {join: \"ipc://%s/kubus.sock\", join_token: %s, listen: []}\n",
	    B.cp_dir, tok);
	B.adm = kbt_host_start(y, err, sizeof(err));
	if (B.adm == NULL)
		die("bench client: %s", err);
	const char *groups[] = { "kubus:plugins" };
	B.c = kbt_client(B.adm, "bench", "plugin:bench", groups, 1);
	if (kbt_kubus(&out, "join token create --ttl 2h --data-dir %s", B.cp_dir) !=
	    0)
		die("join token create: %s", out ? out : "");
	int got = 0;
	for (char *line = strtok(out, "\n"); line && got < 2;
	     line = strtok(NULL, "\n")) {
		if (!strncmp(line, "ts=", 3) || line[0] == '#')
			continue;
		snprintf(got ? B.hash : B.token,
		    got ? sizeof(B.hash) : sizeof(B.token), "%s", line);
		got++;
	}
	free(out);
	if (got != 2)
		die("join token create printed no token and hash");
	sleep_ms(1100); /* the host re-reads its token files once a second */
}

/* `kubus join` workers [from, to), join_par at a time, then start each. */
static void add_workers(int from, int to)
{
	char kp[512];
	snprintf(kp, sizeof(kp), "%s/kubus", kbt_build_dir());
	int64_t t0 = now_ms();
	pid_t running[64] = { 0 };
	int slot_of[64];
	int next = from, active = 0, failed = 0;
	while (next < to || active > 0) {
		while (next < to && active < B.join_par) {
			char wdir[600], tmpl[700], y[1024], name[32], log[700],
			    port[96];
			int i = next++;
			snprintf(wdir, sizeof(wdir), "%s/w%d", B.dir, i);
			snprintf(tmpl, sizeof(tmpl), "%s/w%d.tmpl.yaml", B.dir,
			    i);
			snprintf(log, sizeof(log), "%s/w%d.join.log", B.dir, i);
			snprintf(name, sizeof(name), "hollow-%d", i);
			snprintf(port, sizeof(port), "127.0.0.1:%d",
			    B.cp_bus_port);
			if (B.bare)
				snprintf(y, sizeof(y),
				    "host: {name: ignored, log_level: warn}\n"
				    "plugins: []\n");
			else
				snprintf(y, sizeof(y),
				    "host: {name: ignored, log_level: warn}\n"
				    "plugins:\n"
				    "  - name: kubelet\n"
				    "    use: kubelet\n"
				    "    config:\n"
				    "      runtime: runtime-fake\n"
				    "      runtime_config: {ip_prefix: \"10.%d\"}\n"
				    "      address: 10.%d.%d.1\n",
				    100 + i % 100, 200 + i / 250, i % 250);
			write_text(tmpl, y);
			char *argv[] = { kp, "join", port, "--token", B.token,
				"--ca-hash", B.hash, "--node-name", name,
				"--data-dir", wdir, "--template", tmpl, NULL };
			for (int s = 0; s < 64; s++)
				if (running[s] == 0) {
					running[s] = kbt_spawn_tied(argv, log);
					slot_of[s] = i;
					active++;
					break;
				}
		}
		/* Reap only our joins (the control plane is a child too). */
		bool reaped = false;
		for (int sl = 0; sl < 64; sl++) {
			int st;
			if (running[sl] == 0 ||
			    waitpid(running[sl], &st, WNOHANG) != running[sl])
				continue;
			running[sl] = 0;
			active--;
			reaped = true;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				char log[700];
				snprintf(log, sizeof(log), "%s/w%d.join.log",
				    B.dir, slot_of[sl]);
				char *t = kbt_slurp(log);
				fprintf(stderr, "join hollow-%d failed: %s",
				    slot_of[sl], t ? t : "\n");
				free(t);
				failed++;
			}
		}
		if (!reaped)
			sleep_ms(5);
	}
	if (failed)
		die("%d joins failed", failed);
	fprintf(stderr,
	    "joined hollow-%d … hollow-%d in %.1f s (%d at a "
	    "time)\n",
	    from, to - 1, (double)(now_ms() - t0) / 1000, B.join_par);
	for (int i = from; i < to; i++) {
		char cfg[700], log[700];
		snprintf(cfg, sizeof(cfg), "%s/w%d/worker.yaml", B.dir, i);
		snprintf(log, sizeof(log), "%s/w%d.log", B.dir, i);
		char *argv[] = { kp, "run", "-c", cfg, NULL };
		B.w[i] = kbt_spawn_tied(argv, log);
		if (B.w[i] <= 0)
			die("cannot start worker %d", i);
		sleep_ms(10);
	}
	int64_t t1 = now_ms();
	int ready = 0;
	if (B.bare) {
		/* No kubelet, no Node: give the hellos time, that is all. */
		sleep_ms(5000);
		return;
	}
	while ((ready = kbt_count_ready_nodes(B.c)) < to) {
		if (now_ms() - t1 > 300000)
			die("only %d of %d nodes Ready after 300 s", ready, to);
		sleep_ms(1000);
	}
	fprintf(stderr, "%d nodes Ready %.1f s after their hosts started\n",
	    ready, (double)(now_ms() - t1) / 1000);
}

static void usage(void)
{
	fprintf(stderr,
	    "usage: bench-cluster [--workers N] [--replicas N] [--idle S] "
	    "[--single-idle S] [--timeout S] [--join-parallel N] [--smoke]\n"
	    "                     [--bare-workers] [--skip-single]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	B.workers = 200;
	B.replicas = 5000;
	B.idle_s = 30;
	B.single_idle_s = 20;
	B.timeout_s = 600;
	B.join_par = 4;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "--workers") && more)
			B.workers = atoi(argv[++i]);
		else if (!strcmp(a, "--replicas") && more)
			B.replicas = atoi(argv[++i]);
		else if (!strcmp(a, "--idle") && more)
			B.idle_s = atoi(argv[++i]);
		else if (!strcmp(a, "--single-idle") && more)
			B.single_idle_s = atoi(argv[++i]);
		else if (!strcmp(a, "--timeout") && more)
			B.timeout_s = atoi(argv[++i]);
		else if (!strcmp(a, "--join-parallel") && more)
			B.join_par = atoi(argv[++i]);
		else if (!strcmp(a, "--bare-workers"))
			B.bare = true;
		else if (!strcmp(a, "--skip-single"))
			B.skip_single = true;
		else if (!strcmp(a, "--smoke")) {
			B.workers = 2;
			B.replicas = 20;
			B.idle_s = 2;
			B.single_idle_s = 2;
			B.timeout_s = 120;
		} else
			usage();
	}
	if (B.workers < 1 || B.workers > MAX_WORKERS || B.replicas < 1 ||
	    B.idle_s < 1 || B.single_idle_s < 1 || B.timeout_s < 1 ||
	    B.join_par < 1 || B.join_par > 64)
		usage();
	if (access("/usr/bin/kubectl", X_OK) != 0) {
		printf("bench-cluster: skipped: no /usr/bin/kubectl\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	B.dir = kbt_mkdtemp("bench-cluster");
	if (B.dir == NULL)
		die("mkdtemp: %s", strerror(errno));

	/* (a) a whole single-node cluster at idle */
	double idle_rss = B.skip_single ? 0 : measure_single();

	/* (b) a control plane with 0, N/2 and N hollow workers */
	cp_start();
	double cpu0, rss0, cpu_half = 0, rss_half = 0, cpu_n, rss_n;
	idle_measure(B.cp, B.idle_s, &cpu0, &rss0);
	fprintf(stderr,
	    "control plane, 0 nodes: %.1f MiB RSS, CPU %.3f "
	    "cores over %d s idle\n",
	    rss0, cpu0, B.idle_s);
	mem_detail("  cp", B.cp);
	int half = B.workers / 2;
	if (half > 0) {
		add_workers(0, half);
		sleep_ms(3000);
		idle_measure(B.cp, B.idle_s, &cpu_half, &rss_half);
		fprintf(stderr,
		    "control plane, %d nodes: %.1f MiB RSS, CPU "
		    "%.3f cores over %d s idle\n",
		    half, rss_half, cpu_half, B.idle_s);
		mem_detail("  cp", B.cp);
	}
	add_workers(half, B.workers);
	sleep_ms(3000);
	idle_measure(B.cp, B.idle_s, &cpu_n, &rss_n);
	fprintf(stderr,
	    "control plane, %d nodes: %.1f MiB RSS, CPU %.3f "
	    "cores over %d s idle\n",
	    B.workers, rss_n, cpu_n, B.idle_s);
	mem_detail("  cp", B.cp);
	top_mappings(B.cp, 10);
	long wrss = 0;
	for (int i = 0; i < B.workers; i++)
		wrss += proc_kb(B.w[i], "status", "VmRSS");
	fprintf(stderr,
	    "workers: %.1f MiB RSS each on average (%d processes, "
	    "%.0f MiB in all)\n",
	    (double)wrss / 1024 / B.workers, B.workers, (double)wrss / 1024);
	mem_detail("  worker 0", B.w[0]);

	if (B.bare) {
		printf("cluster (bare workers: bus connections, no kubelet): "
		       "control plane %.1f MiB at 0, %.1f MiB at %d, %.1f MiB "
		       "at %d connections: %.0f KiB per connection\n",
		    rss0, rss_half, half, rss_n, B.workers,
		    (rss_n - rss0) * 1024 / B.workers);
		cleanup();
		printf("RESULT cluster-bare cp_rss_mb_0=%.1f cp_rss_mb_n=%.1f "
		       "cp_cpu_n=%.3f workers=%d\n",
		    rss0, rss_n, cpu_n, B.workers);
		return 0;
	}

	/* (c) a Deployment of --replicas, with kubectl */
	char home[600], yaml[700], cmd[4096], y[2048];
	snprintf(home, sizeof(home), "%s/home", B.dir);
	mkdir(home, 0700);
	snprintf(yaml, sizeof(yaml), "%s/bench.yaml", B.dir);
	snprintf(y, sizeof(y),
	    "apiVersion: apps/v1\n"
	    "kind: Deployment\n"
	    "metadata: {name: bench, namespace: default}\n"
	    "spec:\n"
	    "  replicas: %d\n"
	    "  selector: {matchLabels: {app: bench}}\n"
	    "  template:\n"
	    "    metadata: {labels: {app: bench}}\n"
	    "    spec:\n"
	    "      terminationGracePeriodSeconds: 1\n"
	    "      containers: [{name: c, image: \"busybox:1\"}]\n",
	    B.replicas);
	write_text(yaml, y);
	snprintf(cmd, sizeof(cmd),
	    "HOME=%s KUBECONFIG=%s/admin.kubeconfig /usr/bin/kubectl "
	    "--cache-dir=%s/cache --request-timeout=60s apply -f %s",
	    home, B.cp_dir, home, yaml);
	long hz = sysconf(_SC_CLK_TCK);
	long long ticks0 = tree_ticks(B.cp);
	int64_t t0 = now_ms();
	char *out = NULL;
	if (kbt_run(cmd, &out) != 0)
		die("kubectl apply: %s", out ? out : "");
	free(out);
	struct dstat s;
	int64_t last = t0;
	for (;;) {
		if (deploy_status(B.c, &s) && s.observed >= s.gen &&
		    s.gen > 0 && s.available >= B.replicas)
			break;
		if (now_ms() - t0 > (int64_t)B.timeout_s * 1000)
			die("deployment not available after %d s: %lld "
			    "available of %d",
			    B.timeout_s, (long long)s.available, B.replicas);
		if (now_ms() - last >= 5000) {
			last = now_ms();
			fprintf(stderr,
			    "  %5.1f s: replicas %lld, ready %lld, "
			    "available %lld\n",
			    (double)(last - t0) / 1000, (long long)s.replicas,
			    (long long)s.ready, (long long)s.available);
		}
		sleep_ms(500);
	}
	double deploy_s = (double)(now_ms() - t0) / 1000;
	double deploy_cpu = (double)(tree_ticks(B.cp) - ticks0) / (double)hz;
	fprintf(stderr,
	    "deployment of %d replicas available in %.1f s on %d "
	    "nodes; control plane used %.1f s of CPU, RSS now %.1f "
	    "MiB\n",
	    B.replicas, deploy_s, B.workers, deploy_cpu,
	    (double)tree_rss_kb(B.cp) / 1024);
	mem_detail("  cp after the deployment", B.cp);

	printf("cluster: idle single node %.1f MiB (goal < 30); control plane "
	       "%.1f MiB / %.3f cores at 0 nodes, %.1f MiB / %.3f cores at %d, "
	       "%.1f MiB / %.3f cores at %d (goal < 100 MiB, < 1 core at 200); "
	       "%.1f MiB per 100 nodes; %d replicas available in %.1f s\n",
	    idle_rss, rss0, cpu0, rss_half, cpu_half, half, rss_n, cpu_n,
	    B.workers, B.workers > 0 ? (rss_n - rss0) * 100 / B.workers : 0,
	    B.replicas, deploy_s);
	cleanup();
	printf("RESULT cluster idle_rss_mb=%.1f cp_rss_mb_200=%.1f "
	       "cp_cpu_200=%.3f deploy_s=%.1f\n",
	    idle_rss, rss_n, cpu_n, deploy_s);
	return 0;
}
