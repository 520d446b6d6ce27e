/* tests/unit/test_proxy.c — the service proxy and its backends, for real,
 * in network namespaces this test makes (each with no route out).
 *
 *   node ns  kbt-px-PID     the proxy host (build/kubus run, joined over
 *                           ipc to the control plane in this process)
 *   ep ns    kbt-pxeN-PID   busybox httpd on :8080 answering "epN",
 *                           joined to the node by a veth, 10.244.N.2/24
 *   client   kbt-pxc-PID    10.244.9.2/24, a "pod" calling the service
 *
 * Checked: ClusterIP from the node and from the client, load balanced over
 * every endpoint; a not-ready endpoint gets nothing; a NodePort; an
 * unallocated ClusterIP is refused at once; switching backends
 * nftables -> iptables -> userspace -> nftables with the control plane
 * running leaves nothing of the previous backend and traffic flows (the
 * iptables and userspace runs end in SIGKILL: the next backend cleans up
 * after a crash); each clean stop exits 0 with nothing from ASan/UBSan. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define TOKEN "0123456789abcdef0123456789abcdef-pxadmin"
#define NEPS 3

struct env {
	int pid;
	char node[64], client[64], eps[NEPS][64];
	char *cpdir, *pxdir, *webdir;
	struct kbt_host *h;
	kb_ctx *c;
	pid_t httpd[NEPS];
	pid_t proxy;
	char log[600];
	char cluster_ip[64];
	int node_port;
	char ip_bin[256];
};

static struct env *g_env;

static const char *msg_err(const kb_msg *m)
{
	const char *s = NULL;
	if (m)
		kb_msg_err(m, &s);
	return s ? s : "(no message)";
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run a shell command; its output (malloc'd) in *out if out != NULL. */
static int sh(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int sh(char **out, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	char body[3900];
	vsnprintf(body, sizeof(body), fmt, ap);
	snprintf(cmd, sizeof(cmd), "{ %s\n}", body);
	va_end(ap);
	char *o = NULL;
	int rc = kbt_run(cmd, &o);
	if (out)
		*out = o;
	else
		free(o);
	return rc;
}

/* Remove what a test run with this pid made (also at start: a crashed
 * earlier run of the same pid), plus namespaces of runs that are gone. */
static void net_cleanup(struct env *e)
{
	sh(NULL,
	    "ip netns del %s; ip netns del %s; ip netns del %s; "
	    "ip netns del %s; ip netns del %s",
	    e->node, e->client, e->eps[0], e->eps[1], e->eps[2]);
	char *o = NULL;
	sh(&o, "ip netns list | awk '{print $1}' | grep '^kbt-px'");
	for (char *l = o ? strtok(o, "\n") : NULL; l; l = strtok(NULL, "\n")) {
		const char *d = strrchr(l, '-');
		int p = d ? atoi(d + 1) : 0;
		if (p > 0 && p != e->pid && kill(p, 0) != 0)
			sh(NULL, "ip netns del %s", l);
	}
	free(o);
}

static bool net_setup(struct env *e)
{
	int p = e->pid;
	char *o = NULL;
	int rc = sh(&o,
	    "set -e\n"
	    "ip netns add %s; ip -n %s link set lo up\n"
	    "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1\n"
	    "ip netns add %s; ip -n %s link set lo up\n"
	    "ip link add kpc%d netns %s type veth peer name eth0 netns %s\n"
	    "ip -n %s addr add 10.244.9.1/24 dev kpc%d; ip -n %s link set kpc%d up\n"
	    "ip -n %s addr add 10.244.9.2/24 dev eth0; ip -n %s link set eth0 up\n"
	    "ip -n %s route add default via 10.244.9.1\n",
	    e->node, e->node, e->node, e->client, e->client, p, e->node,
	    e->client, e->node, p, e->node, p, e->client, e->client, e->client);
	if (rc != 0) {
		fprintf(stderr, "net setup: %s\n", o ? o : "");
		free(o);
		return false;
	}
	free(o);
	for (int i = 0; i < NEPS; i++) {
		rc = sh(&o,
		    "set -e\n"
		    "ip netns add %s; ip -n %s link set lo up\n"
		    "ip link add kpe%d%d netns %s type veth peer name eth0 netns %s\n"
		    "ip -n %s addr add 10.244.%d.1/24 dev kpe%d%d; ip -n %s link set kpe%d%d up\n"
		    "ip -n %s addr add 10.244.%d.2/24 dev eth0; ip -n %s link set eth0 up\n"
		    "ip -n %s route add default via 10.244.%d.1\n",
		    e->eps[i], e->eps[i], p, i, e->node, e->eps[i], e->node,
		    i + 1, p, i, e->node, p, i, e->eps[i], i + 1, e->eps[i],
		    e->eps[i], i + 1);
		if (rc != 0) {
			fprintf(stderr, "net setup: %s\n", o ? o : "");
			free(o);
			return false;
		}
		free(o);
	}
	return true;
}

static bool httpd_start(struct env *e)
{
	for (int i = 0; i < NEPS; i++) {
		char dir[512], file[600];
		snprintf(dir, sizeof(dir), "%s/ep%d", e->webdir, i + 1);
		mkdir(dir, 0755);
		snprintf(file, sizeof(file), "%s/index.html", dir);
		FILE *f = fopen(file, "w");
		if (f == NULL)
			return false;
		fprintf(f, "ep%d\n", i + 1);
		fclose(f);
		char *argv[] = { e->ip_bin, "netns", "exec", e->eps[i],
			"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", dir,
			NULL };
		e->httpd[i] = kbt_spawn(argv, e->log);
		if (e->httpd[i] <= 0)
			return false;
	}
	/* wait until each answers on its own address */
	for (int i = 0; i < NEPS; i++) {
		int rc = -1;
		for (int t = 0; t < 50 && rc != 0; t++) {
			rc = sh(NULL,
			    "ip netns exec %s curl -s -m 1 http://10.244.%d.2:8080/ | grep -q ep%d",
			    e->node, i + 1, i + 1);
			if (rc)
				sleep_ms(100);
		}
		if (rc != 0) {
			char *o = NULL;
			sh(&o,
			    "ip netns exec %s curl -v -m 1 http://10.244.%d.2:8080/; ip -n %s addr; ip netns exec %s ss -ltn",
			    e->node, i + 1, e->eps[i], e->eps[i]);
			fprintf(stderr, "endpoint %d does not answer:\n%s\n",
			    i + 1, o ? o : "");
			free(o);
			return false;
		}
	}
	return true;
}

static void env_free(struct env *e)
{
	if (e->proxy > 0)
		kbt_kill(e->proxy);
	for (int i = 0; i < NEPS; i++)
		if (e->httpd[i] > 0)
			kbt_kill(e->httpd[i]);
	/* anything a killed proxy left inside the node ns goes with it */
	net_cleanup(e);
	if (e->h)
		kbt_host_stop(e->h);
	if (e->cpdir)
		kbt_rmrf(e->cpdir);
	if (e->pxdir)
		kbt_rmrf(e->pxdir);
	if (e->webdir)
		kbt_rmrf(e->webdir);
	free(e->cpdir);
	free(e->pxdir);
	free(e->webdir);
	free(e);
}

static bool have(const char *cmd)
{
	return sh(NULL, "command -v %s", cmd) == 0;
}

static int setup(void **state)
{
	if (geteuid() != 0 || !have("ip") || !have("nft") ||
	    !have("iptables-restore") || !have("curl") ||
	    access("/bin/busybox", X_OK) ||
	    sh(NULL,
		"ip netns add kbt-pxprobe-%d && ip netns del kbt-pxprobe-%d",
		(int)getpid(), (int)getpid()) != 0) {
		fprintf(stderr,
		    "SKIP: needs root, iproute2 with netns support, nft, iptables, curl and /bin/busybox\n");
		*state = NULL;
		return 0;
	}
	struct env *e = calloc(1, sizeof(*e));
	e->pid = (int)getpid();
	snprintf(e->node, sizeof(e->node), "kbt-px-%d", e->pid);
	snprintf(e->client, sizeof(e->client), "kbt-pxc-%d", e->pid);
	for (int i = 0; i < NEPS; i++)
		snprintf(e->eps[i], sizeof(e->eps[i]), "kbt-pxe%d-%d", i + 1,
		    e->pid);
	char *o = NULL;
	sh(&o, "command -v ip");
	snprintf(e->ip_bin, sizeof(e->ip_bin), "%s", o ? o : "/sbin/ip");
	e->ip_bin[strcspn(e->ip_bin, "\n")] = '\0';
	free(o);
	g_env = e;
	net_cleanup(e);
	e->cpdir = kbt_mkdtemp("px-cp");
	e->pxdir = kbt_mkdtemp("px-node");
	e->webdir = kbt_mkdtemp("px-web");
	snprintf(e->log, sizeof(e->log), "%s/proxy.log", e->pxdir);
	char path[600];
	snprintf(path, sizeof(path), "%s/tokens.csv", e->cpdir);
	FILE *f = fopen(path, "w");
	fprintf(f, "%s,pxadmin,1,\"system:masters\"\n", TOKEN);
	fclose(f);
	chmod(path, 0600);
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {name: cp, data_dir: %s, log_level: warn}\n"
	    "bus: {listen: [ipc://kubus.sock]}\n"
	    "auth: {token_file: tokens.csv}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false,"
	    " service_cidr: 10.96.0.0/12}\n",
	    e->cpdir);
	e->h = kbt_host_start(yaml, err, sizeof(err));
	if (e->h == NULL) {
		fprintf(stderr, "control plane: %s\n", err);
		env_free(e);
		return -1;
	}
	const char *groups[] = { "kubus:plugins" };
	e->c = kbt_client(e->h, "tester", "plugin:tester", groups, 1);
	if (!net_setup(e) || !httpd_start(e)) {
		fprintf(stderr, "cannot set up the namespaces or httpd\n");
		char *l = kbt_slurp(e->log);
		fprintf(stderr, "%s\n", l ? l : "");
		free(l);
		env_free(e);
		return -1;
	}
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	if (*state)
		env_free(*state);
	g_env = NULL;
	return 0;
}

/* --- the proxy host --------------------------------------------------------- */

static void proxy_start(struct env *e, const char *backend)
{
	char yaml[600];
	snprintf(yaml, sizeof(yaml), "%s/proxy.yaml", e->pxdir);
	FILE *f = fopen(yaml, "w");
	assert_non_null(f);
	fprintf(f,
	    "host: {name: pxnode, log_level: info}\n"
	    "bus: {join: \"ipc://%s/kubus.sock\", join_token: %s, listen: []}\n"
	    "plugins:\n"
	    "  - name: proxy\n"
	    "    use: proxy\n"
	    "    config: {node_name: pxnode, node_ip: 10.244.9.1,"
	    " min_sync_period: 20ms}\n",
	    e->cpdir, TOKEN);
	fclose(f);
	char kubus[512], set[128];
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	snprintf(set, sizeof(set), "proxy.backend=%s", backend);
	char *argv[] = { e->ip_bin, "netns", "exec", e->node, kubus, "run",
		"-c", yaml, "--data-dir", e->pxdir, "--set", set, NULL };
	truncate(e->log, 0);
	e->proxy = kbt_spawn(argv, e->log);
	assert_true(e->proxy > 0);
	char *l = kbt_wait_file(e->log, "proxy started", 15000);
	if (l == NULL) {
		l = kbt_slurp(e->log);
		fail_msg("the proxy host did not start:\n%s", l ? l : "");
	}
	free(l);
}

static void proxy_stop(struct env *e)
{
	kill(e->proxy, SIGTERM);
	int st = kbt_wait_pid(e->proxy, 15000);
	if (st == -1)
		kbt_kill(e->proxy);
	e->proxy = 0;
	assert_int_not_equal(st, -1);
	/* a clean stop: exit 0, and nothing from the sanitizers (ASan build) */
	char *l = kbt_slurp(e->log);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    (l && (strstr(l, "Sanitizer") || strstr(l, "runtime error"))))
		fail_msg("the proxy host did not stop cleanly (status %d):\n%s",
		    st, l ? l : "");
	free(l);
}

/* --- objects ------------------------------------------------------------------ */

static void create_service(struct env *e)
{
	kb_body *b = kb_mp_body(
	    "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:{s:s}, s:[{s:s, s:s, s:i, s:s}]}}",
	    "apiVersion", "v1", "kind", "Service", "metadata", "name", "web",
	    "namespace", "default", "spec", "type", "NodePort", "selector",
	    "app", "web", "ports", "name", "http", "protocol", "TCP", "port",
	    80, "targetPort", "http");
	kb_msg *rep = NULL;
	int rc = kb_api_create(e->c, &KB_GVR_SERVICES, "default", b, &rep);
	if (rc)
		fail_msg("create service: %s", msg_err(rep));
	const char *ip;
	size_t n;
	int64_t np = 0;
	assert_true(kb_mp_str(kb_msg_body(rep), "spec.clusterIP", &ip, &n));
	assert_true(kb_mp_int(kb_msg_body(rep), "spec.ports[0].nodePort", &np));
	snprintf(e->cluster_ip, sizeof(e->cluster_ip), "%.*s", (int)n, ip);
	e->node_port = (int)np;
	kb_msg_free(rep);
}

/* The slice with ready[i] for each endpoint; create or replace. */
static void put_slice(struct env *e, const bool ready[NEPS], bool create)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, NEPS);
	for (int i = 0; i < NEPS; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.244.%d.2", i + 1);
		kb_mp_pack(&pk, "{s:[s], s:{s:b, s:b, s:b}, s:s}", "addresses",
		    ip, "conditions", "ready", ready[i], "serving", ready[i],
		    "terminating", 0, "nodeName", "pxnode");
	}
	kb_body *b = kb_mp_body(
	    "{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:s, s:[{s:s, s:i, s:s}], s:r}",
	    "apiVersion", "discovery.k8s.io/v1", "kind", "EndpointSlice",
	    "metadata", "name", "web-1", "namespace", "default", "labels",
	    "kubernetes.io/service-name", "web", "addressType", "IPv4", "ports",
	    "name", "http", "port", 8080, "protocol", "TCP", "endpoints",
	    sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	kb_msg *rep = NULL;
	int rc = create ?
	    kb_api_create(e->c, &KB_GVR_ENDPOINTSLICES, "default", b, &rep) :
	    kb_api_patch(e->c, &KB_GVR_ENDPOINTSLICES, "default", "web-1", NULL,
		"merge", b, &rep);
	if (rc)
		fail_msg("put endpointslice: %s", msg_err(rep));
	kb_msg_free(rep);
}

/* --- traffic ---------------------------------------------------------------- */

/* n requests from ns to url; hits per endpoint into counts, failures
 * returned. */
static int fetch(const char *ns, const char *url, int n, int counts[NEPS])
{
	char *o = NULL;
	sh(&o,
	    "for i in $(seq %d); do ip netns exec %s curl -s -m 2 %s || echo FAIL; done",
	    n, ns, url);
	memset(counts, 0, NEPS * sizeof(int));
	int fails = 0;
	for (char *l = o ? strtok(o, "\n") : NULL; l; l = strtok(NULL, "\n")) {
		if (strstr(l, "FAIL"))
			fails++;
		for (int i = 0; i < NEPS; i++) {
			char tag[8];
			snprintf(tag, sizeof(tag), "ep%d", i + 1);
			if (strcmp(l, tag) == 0)
				counts[i]++;
		}
	}
	free(o);
	return fails;
}

/* Wait (bounded) until a batch of 20 from ns to url reaches exactly the
 * endpoints in want[] (every one of them, none other, no failure). */
static void expect_balanced(struct env *e, const char *ns, const char *url,
    const bool want[NEPS])
{
	int counts[NEPS], fails = 0;
	bool ok = false;
	for (int tries = 0; tries < 20 && !ok; tries++) {
		fails = fetch(ns, url, 20, counts);
		ok = fails == 0;
		for (int i = 0; i < NEPS; i++)
			if ((counts[i] > 0) != want[i])
				ok = false;
		if (!ok)
			sleep_ms(200);
	}
	if (!ok) {
		char *l = kbt_slurp(e->log);
		char *r = NULL;
		sh(&r,
		    "ip netns exec %s nft list ruleset; ip netns exec %s iptables-save",
		    e->node, e->node);
		fail_msg("%s from %s: hits %d/%d/%d, %d failed (want %d%d%d)\nlog:\n%s\nrules:\n%s",
		    url, ns, counts[0], counts[1], counts[2], fails, want[0],
		    want[1], want[2], l ? l : "", r ? r : "");
	}
}

static void expect_traffic(struct env *e, const bool want[NEPS])
{
	char url[128];
	snprintf(url, sizeof(url), "http://%s:80/", e->cluster_ip);
	expect_balanced(e, e->node, url, want);
	expect_balanced(e, e->client, url, want);
}

/* An address of the service CIDR that is no service's: refused at once. */
static void expect_refused(const char *ns)
{
	int64_t t0 = now_ms();
	int rc = sh(NULL,
	    "ip netns exec %s curl -s -m 5 http://10.111.255.250:80/", ns);
	int64_t ms = now_ms() - t0;
	assert_int_not_equal(rc, 0);
	if (ms > 2000)
		fail_msg("an unallocated ClusterIP from %s took %lld ms to fail: not rejected",
		    ns, (long long)ms);
}

/* What each backend leaves in the node namespace; `want` says present. */
static void expect_leftovers(struct env *e, bool nft, bool ipt, bool dev)
{
	char *o = NULL;
	sh(&o, "ip netns exec %s nft list ruleset", e->node);
	bool has_nft = o && strstr(o, "table ip kubus-proxy");
	free(o);
	sh(&o, "ip netns exec %s iptables-save", e->node);
	bool has_ipt = o && strstr(o, "KUBUS-");
	free(o);
	sh(&o, "ip -n %s link show", e->node);
	bool has_dev = o && strstr(o, "kubus-svc0");
	free(o);
	if (has_nft != nft || has_ipt != ipt || has_dev != dev)
		fail_msg("nft table %d (want %d), iptables KUBUS- chains %d (want %d), kubus-svc0 %d (want %d)",
		    has_nft, nft, has_ipt, ipt, has_dev, dev);
}

static void test_proxy_backends(void **state)
{
	struct env *e = *state;
	if (e == NULL) {
		skip();
		return;
	}
	const bool all[NEPS] = { true, true, true };
	const bool two[NEPS] = { true, true, false };
	create_service(e);
	assert_true(strncmp(e->cluster_ip, "10.", 3) == 0);
	put_slice(e, all, true);

	proxy_start(e, "proxy-nftables");
	expect_traffic(e, all);
	expect_leftovers(e, true, false, false);
	/* ep3 goes not-ready: it stops getting traffic */
	put_slice(e, two, false);
	expect_traffic(e, two);
	/* the NodePort, from the node itself */
	char url[128];
	snprintf(url, sizeof(url), "http://10.244.9.1:%d/", e->node_port);
	expect_balanced(e, e->node, url, two);
	expect_refused(e->node);
	expect_refused(e->client);

	put_slice(e, all, false);
	proxy_stop(e);
	/* a stopped proxy leaves nothing behind */
	expect_leftovers(e, false, false, false);

	const char *seq[] = { "proxy-iptables", "proxy-userspace",
		"proxy-nftables" };
	for (size_t i = 0; i < 3; i++) {
		proxy_start(e, seq[i]);
		expect_traffic(e, all);
		expect_refused(e->node);
		expect_leftovers(e, i != 0 && i != 1, i == 0, i == 1);
		/* the next one starts after a crash: it must clean up */
		if (i < 2) {
			kbt_kill(e->proxy);
			e->proxy = 0;
		}
	}
	snprintf(url, sizeof(url), "http://10.244.9.1:%d/", e->node_port);
	expect_balanced(e, e->node, url, all);
	proxy_stop(e);
	expect_leftovers(e, false, false, false);

	/* userspace once more, stopped cleanly this time (the sanitizers
	 * see its forwarder's teardown), with a NodePort */
	proxy_start(e, "proxy-userspace");
	expect_traffic(e, all);
	expect_balanced(e, e->node, url, all);
	proxy_stop(e);
	expect_leftovers(e, false, false, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_proxy_backends, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
