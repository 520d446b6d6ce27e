/* tests/unit/test_cluster.c — a real cluster of three "hosts": network
 * namespaces made here (kbt-cl-<pid>-{sw,cp,w1,w2}), each host's veth on a
 * bridge in the "switch" namespace, addresses 192.168.77.0/24 inside these
 * namespaces only, no default route anywhere. The control plane (store,
 * apiserver, controllers with a short node grace period, nodeipam,
 * scheduler) runs as `kubus run` in cp's namespace; each worker (kubelet
 * on runc with CNI, proxy on nftables, net-routes, node-local dns) is
 * joined with `kubus join` over tls+tcp and runs as `kubus run` in its
 * own namespace (network namespace only: the kubelet needs the host's
 * mount namespace). Driven with real kubectl:
 *   - `kubectl get nodes`: both workers Ready, each with its own podCIDR;
 *   - a 4-replica Deployment spread over both workers (topology spread by
 *     hostname), a Service, a client pod on w1: from inside the client
 *     container (runc exec) HTTP to a pod on w2 by pod IP, to the Service
 *     by ClusterIP and by its DNS name;
 *   - SIGKILL of w1's kubus: w1 goes Ready=Unknown, its web pods are
 *     evicted (tolerationSeconds 2) and recreated on w2, the Service keeps
 *     answering from w2 with w2's pods only; w1 restarted rejoins Ready and
 *     finishes its evicted pods;
 *   - a join with a wrong token or another node's name is refused; a
 *     host in w2's namespace with w2's node certificate may read its own
 *     Node but gets 403 deleting or patching w1's pod or labelling w1.
 * Forged certificates and expired/revoked tokens are in test_join.c
 * (loopback; not repeated here).
 * Everything made here goes at the end, on failure too (and leftovers of
 * a dead earlier run at the start). Needs root, iproute2, nsenter, runc,
 * the CNI plugins, kubectl, busybox-static; skips (saying why) otherwise. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define WAIT_MS 60000
#define NET "192.168.77."
#define BUS_PORT 7443
#define API_PORT 6443

enum {
	CP,
	W1,
	W2,
	NHOSTS
};
static const char *const host_name[NHOSTS] = { "cp", "w1", "w2" };
static const char *const host_ip[NHOSTS] = { NET "1", NET "2", NET "3" };

static struct {
	char ns[NHOSTS][64], sw[64];
	char dir[256]; /* /tmp/kbt-cluster-<pid> */
	char data[NHOSTS][320], log[NHOSTS][320], kubeconfig[400];
	pid_t pid[NHOSTS];
	int starts[NHOSTS];
	char token[64], hash[128];
	bool up;     /* the namespaces exist */
	bool broken; /* a step failed: the later ones would only time out */
} cl;

static double t0;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# [%5.1fs] ", now_s() - t0);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

/* Run a shell command; its status, output in *out (malloc'd) if asked. */
static int sh(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	char *o = NULL;
	int rc = kbt_run(cmd, &o);
	if (out)
		*out = o ? o : strdup("");
	else {
		if (rc != 0)
			printf("# `%s`: status %d: %s\n", cmd, rc, o ? o : "");
		free(o);
	}
	return rc;
}

static bool write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return false;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

/* Every pod uid seen (for the cleanup checks). */
static char uids[64][64];
static int nuids;

static void note_uid(const char *uid)
{
	if (uid[0] == '\0' || strspn(uid, "0123456789abcdef-") != strlen(uid))
		return;
	for (int i = 0; i < nuids; i++)
		if (!strcmp(uids[i], uid))
			return;
	if (nuids < 64)
		snprintf(uids[nuids++], sizeof(uids[0]), "%s", uid);
}

/* /run/netns/kubus-<12 hex of the uid>: the kubelet's pod netns. */
static void pod_netns(const char *uid, char *buf, size_t len)
{
	char s[16];
	size_t n = 0;
	for (const char *u = uid; *u && n < 12; u++)
		if (*u != '-')
			s[n++] = *u;
	s[n] = '\0';
	snprintf(buf, len, "kubus-%s", s);
}

/* --- cleanup ------------------------------------------------------------ */

/* What a cluster under DIR (namespaces named PREFIX-*) leaves behind when
 * its processes are gone: runc containers of each worker, the pods'
 * network namespaces and cgroups, overlay mounts under DIR, the four
 * namespaces, DIR itself. */
static void clean_all(const char *dir, const char *prefix)
{
	char *out = NULL;
	for (int h = W1; h < NHOSTS; h++) {
		char root[600];
		snprintf(root, sizeof(root), "%s/%s/runc", dir, host_name[h]);
		sh(NULL,
		    "for c in $(runc --root '%s' list -q 2>/dev/null); do "
		    "runc --root '%s' delete -f $c >/dev/null 2>&1; done; true",
		    root, root);
		/* each pod dir is a pod uid: its netns and its cgroup */
		char pods[700];
		snprintf(pods, sizeof(pods), "%s/%s/kubelet/%s/pods", dir,
		    host_name[h], host_name[h]);
		DIR *d = opendir(pods);
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' || strlen(e->d_name) > 64 ||
			    strspn(e->d_name, "0123456789abcdef-") !=
				strlen(e->d_name))
				continue;
			char s[64];
			pod_netns(e->d_name, s, sizeof(s));
			sh(NULL,
			    "if [ -e /run/netns/%s ]; then ip netns del %s; fi; "
			    "find /sys/fs/cgroup -maxdepth 4 -depth -type d -path '*/kubus/%s*' "
			    "-exec rmdir {} + 2>/dev/null; true",
			    s, s, e->d_name);
		}
		if (d)
			closedir(d);
	}
	for (int i = 0; i < nuids; i++) {
		char s[64];
		pod_netns(uids[i], s, sizeof(s));
		sh(NULL, "if [ -e /run/netns/%s ]; then ip netns del %s; fi", s,
		    s);
	}
	sh(NULL,
	    "grep -o ' %s/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; true",
	    dir);
	sh(&out, "ip netns list");
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char name[128];
		if (sscanf(line, "%127s", name) == 1 &&
		    !strncmp(name, prefix, strlen(prefix)) &&
		    name[strlen(prefix)] == '-')
			sh(NULL, "ip netns del %s", name);
	}
	free(out);
	kbt_rmrf(dir);
}

/* Leftovers of earlier runs whose test process is gone. */
static void sweep_stale(void)
{
	DIR *d = opendir("/tmp");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		int pid;
		char rest;
		if (sscanf(e->d_name, "kbt-cluster-%d%c", &pid, &rest) != 1 ||
		    pid <= 0 || kill(pid, 0) == 0)
			continue;
		char dir[300], prefix[64];
		snprintf(dir, sizeof(dir), "/tmp/%s", e->d_name);
		snprintf(prefix, sizeof(prefix), "kbt-cl-%d", pid);
		printf("# removing what a dead run (pid %d) left\n", pid);
		clean_all(dir, prefix);
	}
	if (d)
		closedir(d);
}

/* --- hosts -------------------------------------------------------------- */

/* `kubus ARGS` run in host h's network namespace (and nothing else). */
static int kubus_in(int h, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int kubus_in(int h, char **out, const char *fmt, ...)
{
	char args[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return sh(out, "nsenter --net=/run/netns/%s %s/kubus %s", cl.ns[h],
	    kbt_build_dir(), args);
}

/* Start host h: `nsenter --net=… kubus run -c CONFIG` (nsenter execs
 * kubus, so the pid is kubus's), tied to this process's life. */
static bool host_start(int h, const char *config, const char *ready)
{
	char ns[128], kubus[600], plugins[600], lg[400];
	snprintf(ns, sizeof(ns), "--net=/run/netns/%s", cl.ns[h]);
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	snprintf(plugins, sizeof(plugins), "%s/plugins", kbt_build_dir());
	snprintf(cl.log[h], sizeof(cl.log[h]), "%s/%s-%d.log", cl.dir,
	    host_name[h], ++cl.starts[h]);
	snprintf(lg, sizeof(lg), "%s", cl.log[h]);
	char *argv[] = { "/usr/bin/nsenter", ns, kubus, "run", "-c",
		(char *)config, "--plugin-path", plugins, NULL };
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int fd = open(lg, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	cl.pid[h] = pid;
	char *l = kbt_wait_file(cl.log[h], ready, 30000);
	if (l == NULL) {
		l = kbt_slurp(cl.log[h]);
		printf("# %s did not come up:\n%s\n", host_name[h], l ? l : "");
	}
	bool ok = l != NULL && strstr(l, ready) != NULL;
	free(l);
	return ok;
}

static void host_kill(int h)
{
	if (cl.pid[h] > 0)
		kbt_kill(cl.pid[h]);
	cl.pid[h] = 0;
}

/* SIGTERM and wait: true when it stopped by itself with no sanitizer
 * report in its log. */
static bool host_stop(int h)
{
	if (cl.pid[h] <= 0)
		return true;
	kill(cl.pid[h], SIGTERM);
	int st = kbt_wait_pid(cl.pid[h], 20000);
	if (st < 0)
		kbt_kill(cl.pid[h]);
	cl.pid[h] = 0;
	char *l = kbt_slurp(cl.log[h]);
	bool clean = l && !strstr(l, "Sanitizer") &&
	    !strstr(l, "runtime error:");
	if (!clean || st < 0)
		printf("# %s log %s (status %d):\n%s\n", host_name[h],
		    cl.log[h], st, l ? l : "");
	free(l);
	return st >= 0 && clean;
}

/* --- kubectl ------------------------------------------------------------- */

/* kubectl in cp's namespace, against the admin kubeconfig. */
static char *kubectl(int *status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *kubectl(int *status, const char *fmt, ...)
{
	char args[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	char *out = NULL;
	int st = sh(&out,
	    "HOME='%s' KUBECONFIG='%s' timeout 30 nsenter --net=/run/netns/%s kubectl %s",
	    cl.dir, cl.kubeconfig, cl.ns[CP], args);
	if (status)
		*status = st;
	return out;
}

static char *get(const char *what, const char *jp)
{
	return kubectl(NULL, "get %s -o jsonpath='%s'", what, jp);
}

static void apply(const char *name, const char *yaml)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s.yaml", cl.dir, name);
	assert_true(write_text(path, yaml));
	int st;
	char *out = kubectl(&st, "apply -f %s", path);
	if (st != 0)
		printf("# kubectl apply %s: %s\n", name, out);
	free(out);
	assert_int_equal(st, 0);
}

static void dump_state(void)
{
	char *o = kubectl(NULL, "get nodes,pods,endpointslices -o wide");
	printf("# cluster state:\n%s\n", o);
	free(o);
}

/* Poll until `kubectl get WHAT -o jsonpath=JP` equals WANT ('=' first) or
 * contains it. */
static bool wait_get(const char *what, const char *jp, const char *want, int ms)
{
	char *out = NULL;
	for (int w = 0; w <= ms; w += 300) {
		free(out);
		out = get(what, jp);
		if ((want[0] == '=' && !strcmp(out, want + 1)) ||
		    (want[0] != '=' && strstr(out, want))) {
			free(out);
			return true;
		}
		sleep_ms(300);
	}
	printf("# waited %d ms for %s %s to show \"%s\"; last: %s\n", ms, what,
	    jp, want, out);
	free(out);
	dump_state();
	return false;
}

static bool node_ready_is(int h, const char *status)
{
	char what[64], want[32];
	snprintf(what, sizeof(what), "node %s", host_name[h]);
	snprintf(want, sizeof(want), "=%s", status);
	return wait_get(what,
	    "{.status.conditions[?(@.type==\"Ready\")].status}", want, WAIT_MS);
}

/* --- pods ---------------------------------------------------------------- */

struct webpod {
	char name[128], node[16], ip[32];
	bool terminating, ready;
};

/* The web pods: name|node|ip|deletionTimestamp|ready, one a line. */
static int web_pods(struct webpod *p, int max)
{
	char *o = get("pods -l app=web",
	    "{range .items[*]}{.metadata.name}|{.spec.nodeName}|{.status.podIP}|"
	    "{.metadata.deletionTimestamp}|"
	    "{.status.conditions[?(@.type==\"Ready\")].status}|{.metadata.uid}{\"\\n\"}{end}");
	int n = 0;
	char *save = NULL;
	for (char *line = strtok_r(o, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[6] = { NULL };
		for (int i = 0; i < 6; i++)
			f[i] = strsep(&line, "|");
		if (f[5] == NULL)
			continue;
		note_uid(f[5]);
		memset(&p[n], 0, sizeof(p[n]));
		snprintf(p[n].name, sizeof(p[n].name), "%s", f[0]);
		snprintf(p[n].node, sizeof(p[n].node), "%s", f[1]);
		snprintf(p[n].ip, sizeof(p[n].ip), "%s", f[2]);
		p[n].terminating = f[3][0] != '\0';
		p[n].ready = !strcmp(f[4], "True");
		n++;
	}
	free(o);
	return n;
}

/* Wait until exactly `want` web pods are live (not terminating), Ready,
 * with an IP, none of them on `not_on` (NULL: anywhere); then fill p. */
static int wait_web(struct webpod *p, int want, const char *not_on)
{
	int n = 0;
	for (int w = 0; w < WAIT_MS; w += 500) {
		struct webpod all[32];
		int m = web_pods(all, 32), live = 0;
		bool ok = true;
		for (int i = 0; i < m; i++) {
			if (all[i].terminating)
				continue;
			ok &= all[i].ready && all[i].ip[0] && all[i].node[0] &&
			    !(not_on && !strcmp(all[i].node, not_on));
			if (live < 16)
				p[live] = all[i];
			live++;
		}
		n = live;
		if (ok && live == want)
			return n;
		sleep_ms(500);
	}
	printf("# web pods did not settle (%d live)\n", n);
	dump_state();
	fail();
	return 0;
}

/* The client container's runc id (on w1). */
static char client_cid[128];

/* Run ARGS inside the client container (its network, its resolv.conf, the
 * image's busybox): status, output in *out. */
static int in_client(char **out, const char *args)
{
	return sh(out, "runc --root '%s/runc' exec %s %s", cl.data[W1],
	    client_cid, args);
}

/* wget URL from the client, a few tries: the body (malloc'd) or NULL. */
static char *client_get(const char *url)
{
	char args[600], *o = NULL;
	/* not wget -T: Debian's busybox 1.35 wget crashes on it */
	snprintf(args, sizeof(args), "timeout 3 wget -qO- '%s'", url);
	for (int i = 0; i < 20; i++) {
		free(o);
		o = NULL;
		if (in_client(&o, args) == 0 && o[0])
			return o;
		sleep_ms(300);
	}
	printf("# client wget %s failed: %s\n", url, o);
	free(o);
	return NULL;
}

/* wget URL from w2's own namespace (the node, not a pod). */
static char *node_get(int h, const char *url)
{
	char *o = NULL;
	for (int i = 0; i < 20; i++) {
		free(o);
		o = NULL;
		if (sh(&o,
			"timeout 3 nsenter --net=/run/netns/%s /bin/busybox wget -qO- '%s'",
			cl.ns[h], url) == 0 &&
		    o[0])
			return o;
		sleep_ms(300);
	}
	printf("# %s wget %s failed: %s\n", host_name[h], url, o);
	free(o);
	return NULL;
}

static const char *node_of(const struct webpod *p, int n, const char *body)
{
	for (int i = 0; i < n; i++) {
		size_t l = strlen(p[i].name);
		if (!strncmp(body, p[i].name, l) &&
		    (body[l] == '\n' || body[l] == '\0'))
			return p[i].node;
	}
	return NULL;
}

/* --- setup ---------------------------------------------------------------- */

static bool make_rootfs(char *local_images, size_t len)
{
	if (kbt_runc_images(local_images, len, cl.dir))
		return true;
	/* No image from build.sh: a busybox rootfs made here. */
	printf("# no %s/images/busybox.tar: using a local busybox rootfs\n",
	    kbt_build_dir());
	return sh(NULL,
		   "set -e; r='%s/rootfs'; mkdir -p $r/bin $r/etc $r/tmp $r/proc $r/sys $r/dev; "
		   "cp /bin/busybox $r/bin/busybox; chmod 1777 $r/tmp; "
		   "for a in $(/bin/busybox --list); do "
		   "[ -e $r/bin/$a ] || ln -s busybox $r/bin/$a; done; "
		   "echo 'root:x:0:0:root:/root:/bin/sh' > $r/etc/passwd",
		   cl.dir) == 0;
}

static bool make_network(void)
{
	if (sh(NULL,
		"ip netns add %s && ip -n %s link set lo up && "
		"ip -n %s link add br0 type bridge && ip -n %s link set br0 up",
		cl.sw, cl.sw, cl.sw, cl.sw))
		return false;
	for (int h = 0; h < NHOSTS; h++) {
		if (sh(NULL,
			"ip netns add %s && ip -n %s link set lo up && "
			"ip -n %s link add p-%s type veth peer name eth0 netns %s && "
			"ip -n %s link set p-%s master br0 up && "
			"ip -n %s addr add %s/24 dev eth0 && ip -n %s link set eth0 up",
			cl.ns[h], cl.ns[h], cl.sw, host_name[h], cl.ns[h],
			cl.sw, host_name[h], cl.ns[h], host_ip[h], cl.ns[h]))
			return false;
		if (h != CP &&
		    sh(NULL,
			"nsenter --net=/run/netns/%s sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'",
			cl.ns[h]))
			return false;
	}
	/* the wire works, and nothing leads out */
	char *o = NULL;
	int rc = sh(&o,
	    "nsenter --net=/run/netns/%s /bin/busybox ping -c1 -W2 %s",
	    cl.ns[W1], host_ip[W2]);
	if (rc != 0)
		printf("# ping w1 -> w2: %s\n", o);
	free(o);
	for (int h = 0; h < NHOSTS && rc == 0; h++) {
		sh(&o, "ip -n %s route show default", cl.ns[h]);
		if (o[0])
			rc = -1;
		free(o);
	}
	return rc == 0;
}

static const char *why_skip(void)
{
	static char why[700];
	static const char *const bins[] = { "/usr/lib/cni/bridge",
		"/usr/lib/cni/host-local", "/usr/lib/cni/loopback",
		"/bin/busybox", "/usr/bin/nsenter", NULL };
	static const char *const plugins[] = { "store-lmdb", "apiserver",
		"scheduler", "ctrl-deployment", "ctrl-replicaset", "ctrl-gc",
		"ctrl-nodelifecycle", "ctrl-nodeipam", "ctrl-endpoints",
		"ctrl-endpointslice", "ctrl-serviceaccount", "kubelet",
		"runtime-runc", "proxy", "proxy-nftables", "net-routes", "dns",
		NULL };
	if (geteuid() != 0)
		return "not root (network namespaces, runc, nftables need it)";
	for (int i = 0; bins[i]; i++)
		if (access(bins[i], X_OK) != 0) {
			snprintf(why, sizeof(why), "no %s", bins[i]);
			return why;
		}
	for (int i = 0; plugins[i]; i++) {
		snprintf(why, sizeof(why), "%s/plugins/kubus-%s.so",
		    kbt_build_dir(), plugins[i]);
		if (access(why, R_OK) != 0) {
			strcat(why, " is not built");
			return why;
		}
	}
	if (system("ip -V >/dev/null 2>&1") != 0)
		return "no `ip` (iproute2)";
	if (system("runc --version >/dev/null 2>&1") != 0)
		return "no runc";
	if (system("kubectl version --client >/dev/null 2>&1") != 0)
		return "no kubectl";
	return NULL;
}

static bool write_configs(void)
{
	char y[4096], path[600], rtc[700];
	snprintf(y, sizeof(y),
	    "host: {name: cp, data_dir: %s, log_level: info}\n"
	    "bus: {listen: [\"ipc://kubus.sock\", \"tls+tcp://%s:%d\"]}\n"
	    "auth: {token_file: tokens.csv}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"%s:%d\", service_cidr: 10.96.0.0/12}\n"
	    "  - {name: ctrl-deployment, use: ctrl-deployment}\n"
	    "  - {name: ctrl-replicaset, use: ctrl-replicaset}\n"
	    "  - {name: ctrl-serviceaccount, use: ctrl-serviceaccount}\n"
	    "  - {name: ctrl-gc, use: ctrl-gc}\n"
	    "  - name: ctrl-nodelifecycle\n"
	    "    use: ctrl-nodelifecycle\n"
	    "    config: {grace_period: 6s, monitor_period: 1s, eviction_rate: 0}\n"
	    "  - name: ctrl-nodeipam\n"
	    "    use: ctrl-nodeipam\n"
	    "    config: {cluster_cidr: 10.244.0.0/16, node_cidr_mask_size: 24}\n"
	    "  - {name: ctrl-endpoints, use: ctrl-endpoints}\n"
	    "  - {name: ctrl-endpointslice, use: ctrl-endpointslice}\n"
	    "  - {name: scheduler, use: scheduler}\n",
	    cl.data[CP], host_ip[CP], BUS_PORT, host_ip[CP], API_PORT);
	snprintf(path, sizeof(path), "%s/cp.yaml", cl.dir);
	if (!write_text(path, y) || !make_rootfs(rtc, sizeof(rtc)))
		return false;
	/* One template per worker (what `kubus join --template` keeps):
	 * its own address for the kubelet, proxy and dns. */
	for (int h = W1; h < NHOSTS; h++) {
		snprintf(y, sizeof(y),
		    "plugins:\n"
		    "  - name: kubelet\n"
		    "    use: kubelet\n"
		    "    config:\n"
		    "      runtime: runtime-runc\n"
		    "      runtime_config: %s\n"
		    "      address: %s\n"
		    "      cluster_dns: %s\n"
		    "      lease_interval: 1s\n"
		    "      status_interval: 2s\n"
		    "      sync_period: 500ms\n"
		    "  - name: proxy\n"
		    "    use: proxy\n"
		    "    config: {backend: proxy-nftables, node_ip: %s, service_cidr: 10.96.0.0/12}\n"
		    "  - name: net-routes\n"
		    "    use: net-routes\n"
		    "    config: {resync: 2s}\n"
		    "  - name: dns\n"
		    "    use: dns\n"
		    "    config: {listen: [\"%s:53\"], domain: cluster.local}\n",
		    rtc, host_ip[h], host_ip[h], host_ip[h], host_ip[h]);
		snprintf(path, sizeof(path), "%s/%s-template.yaml", cl.dir,
		    host_name[h]);
		if (!write_text(path, y))
			return false;
	}
	return true;
}

static int setup_cluster(void)
{
	t0 = now_s();
	sweep_stale();
	int pid = (int)getpid();
	snprintf(cl.dir, sizeof(cl.dir), "/tmp/kbt-cluster-%d", pid);
	snprintf(cl.sw, sizeof(cl.sw), "kbt-cl-%d-sw", pid);
	for (int h = 0; h < NHOSTS; h++) {
		snprintf(cl.ns[h], sizeof(cl.ns[h]), "kbt-cl-%d-%s", pid,
		    host_name[h]);
		snprintf(cl.data[h], sizeof(cl.data[h]), "%s/%s", cl.dir,
		    host_name[h]);
	}
	snprintf(cl.kubeconfig, sizeof(cl.kubeconfig), "%s/admin.kubeconfig",
	    cl.data[CP]);
	if (mkdir(cl.dir, 0700) != 0 && errno != EEXIST)
		return -1;
	cl.up = true;
	if (!make_network()) {
		printf("# setting up the namespaces failed\n");
		return -1;
	}
	if (!write_configs())
		return -1;
	/* The bootstrap token (and the bus CA, made by the first call). */
	char *out = NULL;
	int rc = sh(&out, "%s/kubus join token create --ttl 10m --data-dir %s",
	    kbt_build_dir(), cl.data[CP]);
	int got = 0;
	for (char *line = rc == 0 ? strtok(out, "\n") : NULL; line && got < 2;
	     line = strtok(NULL, "\n")) {
		if (!strncmp(line, "ts=", 3) || line[0] == '#')
			continue;
		if (got)
			snprintf(cl.hash, sizeof(cl.hash), "%s", line);
		else
			snprintf(cl.token, sizeof(cl.token), "%s", line);
		got++;
	}
	if (got != 2) {
		printf("# join token create: %s\n", out);
		free(out);
		return -1;
	}
	free(out);
	char cfg[600];
	snprintf(cfg, sizeof(cfg), "%s/cp.yaml", cl.dir);
	if (!host_start(CP, cfg, "export KUBECONFIG="))
		return -1;
	note("control plane up");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	/* for a look at a failed run: the cluster stays up this many seconds */
	if (getenv("KBT_CLUSTER_PAUSE")) {
		printf("# pausing: %s, namespaces kbt-cl-%d-*\n", cl.dir,
		    (int)getpid());
		fflush(stdout);
		sleep((unsigned)atoi(getenv("KBT_CLUSTER_PAUSE")));
	}
	for (int h = NHOSTS - 1; h >= 0; h--)
		host_kill(h);
	if (cl.up) {
		if (getenv("KUBUS_KEEP"))
			printf("# KUBUS_KEEP: logs in %s (removed anyway)\n",
			    cl.dir);
		char prefix[64];
		snprintf(prefix, sizeof(prefix), "kbt-cl-%d", (int)getpid());
		clean_all(cl.dir, prefix);
		cl.up = false;
	}
	return 0;
}

/* A setup that fails half-way cleans up what it made itself. */
static int group_setup(void **state)
{
	int rc = setup_cluster();
	if (rc != 0)
		group_teardown(state);
	return rc;
}

/* --- the tests -------------------------------------------------------------- */

/* Each step needs the ones before it: after a failure the rest are
 * skipped rather than left to time out (the teardown cleans up). */
#define STEP_BEGIN()                                                           \
	do {                                                                   \
		if (cl.broken)                                                 \
			skip();                                                \
		cl.broken = true;                                              \
	} while (0)
#define STEP_END() (cl.broken = false)

static int join_as(int h, const char *node, const char *token, char **out)
{
	return kubus_in(h, out,
	    "join %s:%d --token %s --ca-hash %s --node-name %s --data-dir %s "
	    "--template %s/%s-template.yaml",
	    host_ip[CP], BUS_PORT, token, cl.hash, node, cl.data[h], cl.dir,
	    host_name[h]);
}

static void start_worker(int h)
{
	char cfg[600];
	snprintf(cfg, sizeof(cfg), "%s/worker.yaml", cl.data[h]);
	assert_true(host_start(h, cfg, "host running"));
}

static void test_join_nodes_ready(void **state)
{
	(void)state;
	STEP_BEGIN();
	char *out = NULL;
	for (int h = W1; h < NHOSTS; h++) {
		int rc = join_as(h, host_name[h], cl.token, &out);
		if (rc != 0)
			printf("# join %s: %s\n", host_name[h], out);
		assert_int_equal(rc, 0);
		free(out);
		start_worker(h);
	}
	assert_true(node_ready_is(W1, "True"));
	assert_true(node_ready_is(W2, "True"));
	/* and untainted (not-ready goes after Ready): the spread below
	 * counts only nodes whose taints the pods tolerate */
	assert_true(wait_get("nodes", "{.items[*].spec.taints}", "=", WAIT_MS));
	/* each has its own podCIDR and its address, and routes to the other */
	char *c1 = get("node w1", "{.spec.podCIDR}"),
	     *c2 = get("node w2", "{.spec.podCIDR}");
	printf("# podCIDRs: w1 %s, w2 %s\n", c1, c2);
	assert_int_equal(strncmp(c1, "10.244.", 7), 0);
	assert_int_equal(strncmp(c2, "10.244.", 7), 0);
	assert_string_not_equal(c1, c2);
	char want[128];
	snprintf(want, sizeof(want), "%s via %s", c2, host_ip[W2]);
	bool routed = false;
	for (int w = 0; w < 20000 && !routed; w += 300) {
		sh(&out, "ip -n %s route show proto 75", cl.ns[W1]);
		routed = strstr(out, want) != NULL;
		if (!routed) {
			free(out);
			sleep_ms(300);
		}
	}
	printf("# w1's routes of net-routes: %s", out);
	assert_true(routed);
	free(out);
	free(c1);
	free(c2);
	int st;
	out = kubectl(&st, "get nodes");
	printf("%s", out);
	assert_int_equal(st, 0);
	/* the kubectl table: both Ready */
	int ready = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
		if ((!strncmp(line, "w1 ", 3) || !strncmp(line, "w2 ", 3)) &&
		    strstr(line, " Ready "))
			ready++;
	assert_int_equal(ready, 2);
	free(out);
	note("both workers Ready");
	STEP_END();
}

static const char web_yaml[] =
    "apiVersion: apps/v1\nkind: Deployment\n"
    "metadata: {name: web, namespace: default}\n"
    "spec:\n"
    "  replicas: 4\n"
    "  selector: {matchLabels: {app: web}}\n"
    "  template:\n"
    "    metadata: {labels: {app: web}}\n"
    "    spec:\n"
    "      terminationGracePeriodSeconds: 1\n"
    "      tolerations:\n"
    "      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute,"
    " tolerationSeconds: 2}\n"
    "      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute,"
    " tolerationSeconds: 2}\n"
    "      topologySpreadConstraints:\n"
    "      - maxSkew: 1\n"
    "        topologyKey: kubernetes.io/hostname\n"
    "        whenUnsatisfiable: DoNotSchedule\n"
    "        nodeTaintsPolicy: Honor\n"
    "        labelSelector: {matchLabels: {app: web}}\n"
    "      containers:\n"
    "      - name: httpd\n"
    "        image: busybox\n"
    "        command: [sh, -c, \"mkdir -p /tmp/www && hostname > /tmp/www/index.html && "
    "exec httpd -f -p 8080 -h /tmp/www\"]\n"
    "        ports: [{containerPort: 8080}]\n"
    "        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}\n"
    "---\n"
    "apiVersion: v1\nkind: Service\n"
    "metadata: {name: web, namespace: default}\n"
    "spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n"
    "---\n"
    "apiVersion: v1\nkind: Pod\n"
    "metadata: {name: client, namespace: default}\n"
    "spec:\n"
    "  nodeName: w1\n"
    "  terminationGracePeriodSeconds: 1\n"
    "  containers: [{name: c, image: busybox, command: [sleep, \"3600\"]}]\n";

static char cluster_ip[64];

static void test_traffic_across_nodes(void **state)
{
	(void)state;
	STEP_BEGIN();
	apply("web", web_yaml);
	struct webpod p[16];
	int n = wait_web(p, 4, NULL);
	assert_true(
	    wait_get("pod client", "{.status.phase}", "=Running", WAIT_MS));
	note("4 web pods Ready, client Running");
	int on[NHOSTS] = { 0 };
	const struct webpod *far = NULL;
	for (int i = 0; i < n; i++) {
		printf("# %s on %s at %s\n", p[i].name, p[i].node, p[i].ip);
		for (int h = W1; h < NHOSTS; h++)
			if (!strcmp(p[i].node, host_name[h]))
				on[h]++;
		if (!strcmp(p[i].node, "w2"))
			far = &p[i];
	}
	/* topology spread, maxSkew 1 over two nodes */
	assert_int_equal(on[W1], 2);
	assert_int_equal(on[W2], 2);
	assert_non_null(far);

	char *uid = get("pod client", "{.metadata.uid}");
	note_uid(uid);
	free(uid);
	char *id =
	    get("pod client", "{.status.containerStatuses[0].containerID}");
	const char *bare = strstr(id, "://") ? strstr(id, "://") + 3 : id;
	snprintf(client_cid, sizeof(client_cid), "%s", bare);
	free(id);
	assert_true(client_cid[0] != '\0');

	/* pod to pod, w1 -> w2 over the host-gw routes */
	char url[256];
	snprintf(url, sizeof(url), "http://%s:8080/", far->ip);
	char *body = client_get(url);
	printf("# client -> %s: %s", url, body ? body : "(nothing)\n");
	assert_non_null(body);
	assert_int_equal(strncmp(body, far->name, strlen(far->name)), 0);
	free(body);

	/* the Service by ClusterIP: answers come from pods, and pods on
	 * both nodes answer over a few tries */
	char *ip = get("service web", "{.spec.clusterIP}");
	snprintf(cluster_ip, sizeof(cluster_ip), "%s", ip);
	free(ip);
	assert_int_equal(strncmp(cluster_ip, "10.", 3), 0);
	snprintf(url, sizeof(url), "http://%s/", cluster_ip);
	bool seen[NHOSTS] = { false };
	for (int i = 0; i < 30 && !(seen[W1] && seen[W2]); i++) {
		body = client_get(url);
		assert_non_null(body);
		const char *node = node_of(p, n, body);
		if (node == NULL)
			printf("# unexpected answer: %s\n", body);
		assert_non_null(node);
		seen[node[1] - '0'] = true;
		free(body);
	}
	printf("# ClusterIP %s answered from w1: %d, w2: %d\n", cluster_ip,
	    seen[W1], seen[W2]);
	assert_true(seen[W2]);

	/* DNS from the client: its resolv.conf names w1's node-local dns */
	char *o = NULL;
	assert_int_equal(in_client(&o, "cat /etc/resolv.conf"), 0);
	assert_non_null(strstr(o, "nameserver " NET "2"));
	free(o);
	int rc = in_client(&o, "nslookup web.default.svc.cluster.local");
	printf("# nslookup from the client: %s", o);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(o, cluster_ip));
	free(o);
	body = client_get("http://web.default.svc.cluster.local/");
	printf("# client -> web.default.svc.cluster.local: %s",
	    body ? body : "(nothing)\n");
	assert_non_null(body);
	assert_non_null(node_of(p, n, body));
	free(body);
	note("pod-to-pod, ClusterIP and DNS across nodes");
	STEP_END();
}

static void test_node_loss_and_return(void **state)
{
	(void)state;
	STEP_BEGIN();
	struct webpod before[16];
	int nb = wait_web(before, 4, NULL);
	/* the host process of w1 dies at once (its containers stay, as
	 * on a host whose agent crashed) */
	note("SIGKILL w1 (pid %d)", (int)cl.pid[W1]);
	host_kill(W1);
	assert_true(node_ready_is(W1, "Unknown"));
	note("w1 Ready=Unknown");
	char *t = get("node w1", "{.spec.taints[*].key}");
	printf("# w1 taints: %s\n", t);
	assert_non_null(strstr(t, "node.kubernetes.io/unreachable"));
	free(t);
	/* evicted after 2 s, recreated on w2 */
	struct webpod p[16];
	int n = wait_web(p, 4, "w1");
	note("4 web pods Ready on w2");
	for (int i = 0; i < n; i++) {
		assert_string_equal(p[i].node, "w2");
		for (int j = 0; j < nb; j++)
			if (!strcmp(before[j].node, "w1"))
				assert_string_not_equal(p[i].name,
				    before[j].name);
	}
	/* the evicted ones wait, terminating, for their node */
	struct webpod all[32];
	int m = web_pods(all, 32), evicted = 0;
	for (int i = 0; i < m; i++)
		evicted += all[i].terminating && !strcmp(all[i].node, "w1");
	printf("# %d evicted pods wait for w1\n", evicted);
	assert_int_equal(evicted, 2);
	/* the Service keeps answering on w2's side, from w2's pods only */
	char url[128];
	snprintf(url, sizeof(url), "http://%s/", cluster_ip);
	for (int i = 0; i < 8; i++) {
		char *body = node_get(W2, url);
		assert_non_null(body);
		const char *node = node_of(p, n, body);
		if (node == NULL)
			printf("# answer not from a live pod: %s", body);
		assert_non_null(node);
		assert_string_equal(node, "w2");
		free(body);
	}
	note("Service answers from w2");

	/* w1 comes back: Ready again, and it finishes its evicted pods */
	start_worker(W1);
	assert_true(node_ready_is(W1, "True"));
	note("w1 Ready again");
	int w = 0;
	for (; w < WAIT_MS; w += 500) {
		m = web_pods(all, 32);
		if (m == 4)
			break;
		sleep_ms(500);
	}
	if (w >= WAIT_MS)
		dump_state();
	assert_int_equal(m, 4);
	t = get("node w1", "{.spec.taints[*].key}");
	printf("# w1 taints now: \"%s\"\n", t);
	assert_null(strstr(t, "unreachable"));
	free(t);
	/* the client on w1 was adopted and still reaches the Service */
	char *body = client_get(url);
	assert_non_null(body);
	assert_non_null(node_of(p, n, body));
	free(body);
	int st;
	char *o = kubectl(&st, "get nodes");
	printf("%s", o);
	assert_int_equal(st, 0);
	free(o);
	note("evicted pods finished by the returning w1");
	STEP_END();
}

static void test_bad_joins_refused(void **state)
{
	(void)state;
	STEP_BEGIN();
	char *out = NULL;
	/* a wrong token, from w2's namespace */
	int rc = join_as(W2, "w3", "abcdef.0123456789abcdef", &out);
	printf("# wrong token: %s", out);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "join refused"));
	assert_non_null(strstr(out, "invalid bearer token"));
	free(out);
	/* the good token, but w1's name from another key */
	char dir[400];
	snprintf(dir, sizeof(dir), "%s/impostor", cl.dir);
	rc = kubus_in(W2, &out,
	    "join %s:%d --token %s --ca-hash %s --node-name w1 --data-dir %s "
	    "--template %s/w2-template.yaml",
	    host_ip[CP], BUS_PORT, cl.token, cl.hash, dir, cl.dir);
	printf("# w1's name from w2: %s", out);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "already registered by another key"));
	free(out);
	/* and w1 is still fine */
	assert_true(node_ready_is(W1, "True"));
	STEP_END();
}

/* In a child in w2's namespace: a host joined with w2's own node
 * certificate (principal node:w2) tries to change what belongs to w1.
 * Exit status: a bit per check that went wrong. */
static int w2_meddles(void)
{
	char path[128], y[2048], err[1024];
	snprintf(path, sizeof(path), "/run/netns/%s", cl.ns[W2]);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
		return 64;
	close(fd);
	snprintf(y, sizeof(y),
	    "host: {name: w2-probe}\n"
	    "bus:\n"
	    "  join: \"tls+tcp://%s:%d\"\n"
	    "  listen: []\n"
	    "  tls: {cert: %s/pki/node.crt, key: %s/pki/node.key, ca: %s/pki/ca.crt,"
	    " server_name: kubus-bus}\n",
	    host_ip[CP], BUS_PORT, cl.data[W2], cl.data[W2], cl.data[W2]);
	struct kbt_host *h = kbt_host_start(y, err, sizeof(err));
	if (h == NULL) {
		printf("# w2-probe: %s\n", err);
		return 128;
	}
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *c = kbt_client(h, "probe", "plugin:probe", groups, 1);
	int bad = 0, rc;
	kb_msg *rep = NULL;
	/* its own Node it may read */
	rc = kb_api_get(c, &KB_GVR_NODES, NULL, "w2", &rep);
	printf("# node:w2 gets node w2: %s\n", kb_strerror(rc));
	bad |= rc != 0;
	kb_msg_free(rep);
	rc = kb_api_delete(c, &KB_GVR_PODS, "default", "client", NULL, NULL);
	printf("# node:w2 deletes pod client (on w1): %s\n", kb_strerror(rc));
	bad |= (rc != KB_EFORBIDDEN) << 1;
	rc = kb_api_patch(c, &KB_GVR_PODS, "default", "client", "status",
	    "merge", kb_mp_body("{s:{s:s}}", "status", "phase", "Failed"),
	    NULL);
	printf("# node:w2 patches pod client's status: %s\n", kb_strerror(rc));
	bad |= (rc != KB_EFORBIDDEN) << 2;
	rc = kb_api_patch(c, &KB_GVR_NODES, NULL, "w1", NULL, "merge",
	    kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "owned", "by-w2"),
	    NULL);
	printf("# node:w2 labels node w1: %s\n", kb_strerror(rc));
	bad |= (rc != KB_EFORBIDDEN) << 3;
	fflush(stdout);
	kbt_host_stop(h);
	return bad;
}

static void test_other_nodes_pods_forbidden(void **state)
{
	(void)state;
	STEP_BEGIN();
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(w2_meddles());
	int st = kbt_wait_pid(pid, 30000);
	if (st < 0)
		kbt_kill(pid);
	printf("# w2-probe status %d\n", st);
	assert_true(st >= 0 && WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* and the client is untouched */
	char *o =
	    get("pod client", "{.status.phase} {.metadata.deletionTimestamp}");
	printf("# client: %s\n", o);
	assert_string_equal(o, "Running ");
	free(o);
	o = get("node w1", "{.metadata.labels.owned}");
	assert_string_equal(o, "");
	free(o);
	STEP_END();
}

/* Everything deleted through the API: the kubelets clean up their pods;
 * then the hosts stop cleanly (no sanitizer report either). */
static void test_cleanup(void **state)
{
	(void)state;
	STEP_BEGIN();
	int st;
	char *o =
	    kubectl(&st, "delete deployment web --wait=true --timeout=40s");
	free(o);
	assert_int_equal(st, 0);
	o = kubectl(&st, "delete pod --all --wait=true --timeout=40s");
	free(o);
	assert_int_equal(st, 0);
	assert_true(
	    wait_get("pods", "{.items[*].metadata.name}", "=", WAIT_MS));
	for (int h = W1; h < NHOSTS; h++) {
		char *n = NULL;
		sh(&n, "runc --root '%s/runc' list -q | wc -l", cl.data[h]);
		int left = atoi(n);
		free(n);
		for (int w = 0; left && w < 10000; w += 300) {
			sleep_ms(300);
			sh(&n, "runc --root '%s/runc' list -q | wc -l",
			    cl.data[h]);
			left = atoi(n);
			free(n);
		}
		printf("# %s: %d runc containers left\n", host_name[h], left);
		assert_int_equal(left, 0);
	}
	/* no pod network namespace or cgroup of any pod seen is left */
	printf("# %d pods seen\n", nuids);
	assert_true(nuids >= 7); /* 4 web, 2 replacements, the client */
	for (int i = 0; i < nuids; i++) {
		char ns[64], path[128], *n = NULL;
		pod_netns(uids[i], ns, sizeof(ns));
		snprintf(path, sizeof(path), "/run/netns/%s", ns);
		for (int w = 0; w < 10000 && access(path, F_OK) == 0; w += 200)
			sleep_ms(200);
		if (access(path, F_OK) == 0)
			printf("# left: %s\n", path);
		assert_int_not_equal(access(path, F_OK), 0);
		sh(&n,
		    "find /sys/fs/cgroup -maxdepth 4 -type d -name '%s' | wc -l",
		    uids[i]);
		if (atoi(n))
			printf("# cgroups left for %s\n", uids[i]);
		assert_int_equal(atoi(n), 0);
		free(n);
	}
	bool clean = true;
	for (int h = NHOSTS - 1; h >= 0; h--)
		clean &= host_stop(h);
	assert_true(clean);
	note("done");
	STEP_END();
}

int main(void)
{
	const char *why = why_skip();
	if (why) {
		printf("# SKIP cluster: %s\n", why);
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_nodes_ready),
		cmocka_unit_test(test_traffic_across_nodes),
		cmocka_unit_test(test_node_loss_and_return),
		cmocka_unit_test(test_bad_joins_refused),
		cmocka_unit_test(test_other_nodes_pods_forbidden),
		cmocka_unit_test(test_cleanup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
