/* tests/unit/test_e2e_services.c — issue 8 end to end on a real single
 * node: `kubus run` (store-lmdb, apiserver, deployment, replicaset,
 * endpoints and endpointslice controllers, scheduler, kubelet on runc with
 * CNI, proxy, dns) as a child process inside a network namespace this test
 * makes (kbt-e2es-<pid>: lo only, no route out; the pod bridge kbte0 and
 * the pod veths live there), driven with real kubectl:
 *   - a Deployment of 3 busybox httpd pods, each answering its hostname,
 *     with an exec readiness probe on /tmp/ready; `kubectl expose` makes
 *     Service `web`, a NodePort Service `web-np` targets the named port;
 *   - a client pod (busybox wget in a loop, one log line per round of
 *     20) reaches http://web.default.svc.cluster.local (and http://web,
 *     through the search path) — cluster DNS on the bridge gateway,
 *     through the proxy — and a round reaches all 3 pods; busybox
 *     nslookup in the pod answers the ClusterIP; an unallocated ClusterIP
 *     is refused at once;
 *   - dig from the node's namespace: A over UDP and TCP, SRV of the named
 *     port, PTR of the ClusterIP, NXDOMAIN for an unknown service;
 *   - a pod whose /tmp/ready the test removes (through /proc/PID/root)
 *     turns not-ready and stops receiving traffic; back when it returns;
 *   - the NodePort answers from the node's namespace;
 *   - the host restarts with proxy.backend proxy-iptables, then
 *     proxy-userspace, then proxy-nftables: pods are adopted, traffic by
 *     name flows each time and nothing of the previous backend remains;
 *   - deleting the services ends their DNS names, and a stopped host
 *     leaves no proxy rule, no runc container and no pod veth.
 * Needs root, runc, iproute2, the CNI plugins, kubectl, nft, iptables,
 * dig, curl, busybox-static and br_netfilter; skips (saying why)
 * otherwise. */
#include <errno.h>
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

#include "harness.h"
#include "kubelet_netns.h"

#define NODE "e2es-node"
#define GW "10.244.7.1"
#define WAIT_MS 40000
#define ROUND 20 /* requests per client round */
#define NWEB 3

static char netns_name[KN_NETNS_LEN];
static char *tmp, *data;
static struct kbt_kubus kubus;
static struct kn_kubectl kc;
static char cluster_ip[64];
static int node_port;
static char web_names[NWEB][128], web_ips[NWEB][64], web_cids[NWEB][128];

static const char *runc_root(void)
{
	static char p[600];
	snprintf(p, sizeof(p), "%s/runc", data);
	return p;
}

static char *config(void)
{
	char rtc[800], *y;
	/* Without the image build's busybox.tar, a rootfs made here. */
	kbt_runc_images(rtc, sizeof(rtc), tmp);
	if (asprintf(&y,
		"host:\n"
		"  name: " NODE "\n"
		"  log_level: info\n"
		"auth:\n"
		"  token_file: tokens.csv\n"
		"plugins:\n"
		"  - name: store\n"
		"    use: store-lmdb\n"
		"    config: {path: store-lmdb, sync: false}\n"
		"  - name: apiserver\n"
		"    use: apiserver\n"
		"    config: {listen: \"127.0.0.1:0\", service_cidr: 10.96.0.0/12}\n"
		"  - {name: ctrl-deployment, use: ctrl-deployment}\n"
		"  - {name: ctrl-replicaset, use: ctrl-replicaset}\n"
		"  - {name: ctrl-endpoints, use: ctrl-endpoints}\n"
		"  - {name: ctrl-endpointslice, use: ctrl-endpointslice}\n"
		"  - {name: ctrl-gc, use: ctrl-gc}\n"
		"  - {name: scheduler, use: scheduler}\n"
		"  - name: kubelet\n"
		"    use: kubelet\n"
		"    config:\n"
		"      runtime: runtime-runc\n"
		"      runtime_config: %s\n"
		"      pod_cidr: 10.244.7.0/24\n"
		"      bridge: kbte0\n"
		/* the DNS listens on every address of the node's netns, so
		 * pods reach it at their gateway */
		"      cluster_dns: " GW "\n"
		"      sync_period: 500ms\n"
		"  - name: proxy\n"
		"    use: proxy\n"
		"    config: {node_name: " NODE ", node_ip: " GW ","
		" min_sync_period: 20ms}\n"
		"  - name: dns\n"
		"    use: dns\n"
		"    config: {listen: [\"0.0.0.0:53\"], ttl: 1}\n",
		rtc) < 0)
		return NULL;
	return y;
}

/* Start the host (backend NULL: the config's default), wait for the
 * kubeconfig line and the proxy. */
static bool start(const char *backend)
{
	char set[128];
	snprintf(set, sizeof(set), "proxy.backend=%s", backend ? backend : "");
	char *y = config();
	bool ok = kbt_kubus_start(&kubus, tmp, data, y, backend ? set : NULL,
	    "proxy started");
	free(y);
	return ok;
}

/* SIGTERM, as a user would; true when it exited cleanly. */
static bool stop(void)
{
	return kbt_kubus_stop(&kubus);
}

static int group_setup(void **state)
{
	kbt_sweep_stale("e2es");
	tmp = kbt_mkdtemp_owned("e2es");
	if (tmp == NULL || asprintf(&data, "%s/data", tmp) < 0 ||
	    mkdir(data, 0700) != 0)
		return -1;
	snprintf(kc.home, sizeof(kc.home), "%s", tmp);
	snprintf(kc.kubeconfig, sizeof(kc.kubeconfig), "%s/admin.kubeconfig",
	    data);
	if (system("sysctl -qw net.ipv4.ip_forward=1") != 0)
		fprintf(stderr, "# cannot enable forwarding\n");
	if (!kbt_busybox_rootfs(tmp) || !start(NULL))
		return -1;
	bool ok;
	char *out = kn_wait(&kc, "node " NODE,
	    "{.status.conditions[?(@.type==\"Ready\")].status}", "=True",
	    WAIT_MS, &ok);
	free(out);
	return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
	if (kubus.pid > 0 && !stop())
		fprintf(stderr, "# the host did not stop cleanly\n");
	/* What a failed test may have left: runc containers (their shims go
	 * with them), pod netns, mounts under the tmp dir. The test's own
	 * netns (bridge, veths, nft and iptables rules) goes in kn_leave. */
	kbt_pods_cleanup(tmp);
	if (getenv("KUBUS_KEEP"))
		fprintf(stderr, "# kept %s\n", tmp);
	else
		kbt_rmrf(tmp);
	free(tmp);
	free(data);
	free(kubus.log);
	return 0;
}

/* --- helpers ---------------------------------------------------------------- */

static void apply(const char *name, const char *yaml)
{
	int st;
	free(kn_apply(&kc, tmp, name, yaml, &st));
	assert_int_equal(st, 0);
}

static void kubectl_ok(const char *args)
{
	int st;
	char *out = kn_kubectl(&kc, &st, "%s", args);
	printf("# kubectl %s: %s", args, out);
	if (st != 0)
		fprintf(stderr, "# kubectl %s failed (%d): %s\n", args, st,
		    out);
	free(out);
	assert_int_equal(st, 0);
}

static char *get(const char *what, const char *jp)
{
	return kn_kubectl(&kc, NULL, "get %s -o jsonpath='%s'", what, jp);
}

static void expect_in(const char *hay, const char *needle)
{
	if (hay == NULL || strstr(hay, needle) == NULL)
		fprintf(stderr, "# expected \"%s\" in:\n%s\n", needle,
		    hay ? hay : "(null)");
	assert_non_null(hay);
	assert_non_null(strstr(hay, needle));
}

static void dump_state(void)
{
	char *o = NULL;
	kbt_run("nft list ruleset; iptables-save; ip addr; ip route", &o);
	fprintf(stderr, "# node netns:\n%s\n", o ? o : "");
	free(o);
	o = kn_kubectl(&kc, NULL, "get pods,svc,endpointslices -o wide");
	fprintf(stderr, "# objects:\n%s\n", o);
	free(o);
	o = kbt_slurp(kubus.log);
	size_t n = o ? strlen(o) : 0;
	fprintf(stderr, "# kubus log (tail):\n%s\n",
	    o ? (n > 6000 ? o + n - 6000 : o) : "");
	free(o);
}

static void wait_for(const char *what, const char *jp, const char *want)
{
	bool ok;
	char *out = kn_wait(&kc, what, jp, want, WAIT_MS, &ok);
	free(out);
	if (!ok)
		dump_state();
	assert_true(ok);
}

static int hit_index(const char *name)
{
	for (int i = 0; i < NWEB; i++)
		if (!strcmp(web_names[i], name))
			return i;
	return -1;
}

/* Is one line of the client's log ("R <start> <answer>…") a round that
 * started after `after` and reached exactly the pods in want[]? */
static bool round_ok(char *line, long after, const bool want[NWEB],
    int hits[NWEB])
{
	char *save = NULL, *tok = strtok_r(line, " ", &save);
	if (tok == NULL || strcmp(tok, "R") != 0)
		return false;
	tok = strtok_r(NULL, " ", &save);
	if (tok == NULL || strtol(tok, NULL, 10) <= after)
		return false;
	int n = 0;
	memset(hits, 0, NWEB * sizeof(int));
	while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
		int i = hit_index(tok);
		if (i < 0 || !want[i])
			return false; /* FAIL, or a pod that must get nothing */
		hits[i]++;
		n++;
	}
	for (int i = 0; i < NWEB; i++)
		if ((hits[i] > 0) != want[i])
			return false;
	return n == ROUND;
}

/* Wait until a round of the client pod that started after `after`
 * (seconds since the epoch) reached exactly the pods in want[] by name. */
static void expect_traffic(long after, const bool want[NWEB], const char *why)
{
	char *logs = NULL;
	for (int waited = 0; waited <= WAIT_MS; waited += 500) {
		free(logs);
		logs = kn_kubectl(&kc, NULL, "logs client --tail=8");
		char *copy = strdup(logs), *save = NULL;
		bool ok = false;
		int hits[NWEB];
		for (char *l = strtok_r(copy, "\n", &save); l && !ok;
		     l = strtok_r(NULL, "\n", &save))
			ok = round_ok(l, after, want, hits);
		free(copy);
		if (ok) {
			printf("# %s: %d requests by name, hits %d/%d/%d\n",
			    why, ROUND, hits[0], hits[1], hits[2]);
			free(logs);
			return;
		}
		kn_sleep_ms(500);
	}
	fprintf(stderr,
	    "# %s: no round after %ld reached exactly %d%d%d of "
	    "%s %s %s; last client log:\n%s\n",
	    why, after, want[0], want[1], want[2], web_names[0], web_names[1],
	    web_names[2], logs);
	free(logs);
	dump_state();
	fail();
}

/* The host pid of a web pod's container, from runc's own state. */
static int web_pid(int i)
{
	const char *id = strstr(web_cids[i], "://") ?
	    strstr(web_cids[i], "://") + 3 :
	    web_cids[i];
	char cmd[1200], *o = NULL;
	snprintf(cmd, sizeof(cmd),
	    "runc --root '%s' state '%s' | grep '\"pid\"' | tr -dc 0-9",
	    runc_root(), id);
	kbt_run(cmd, &o);
	int pid = o ? atoi(o) : 0;
	free(o);
	return pid;
}

/* What the backends leave in the node's netns; say which must be there. */
static void expect_backend(bool nft, bool ipt, bool us)
{
	bool has_nft = false, has_ipt = false, has_us = false;
	/* the first sync after a start may still be on its way */
	for (int i = 0; i < 50; i++) {
		char *o = NULL;
		kbt_run("nft list ruleset", &o);
		has_nft = o && strstr(o, "table ip kubus-proxy");
		free(o);
		o = NULL;
		kbt_run("iptables-save", &o);
		has_ipt = o && strstr(o, "KUBUS-");
		free(o);
		o = NULL;
		kbt_run("ip link show", &o);
		has_us = o && strstr(o, "kubus-svc0");
		free(o);
		if (has_nft == nft && has_ipt == ipt && has_us == us)
			return;
		kn_sleep_ms(100);
	}
	fprintf(stderr,
	    "# nft table %d (want %d), iptables KUBUS- chains %d (want %d), "
	    "kubus-svc0 %d (want %d)\n",
	    has_nft, nft, has_ipt, ipt, has_us, us);
	dump_state();
	fail();
}

/* 20 requests to the NodePort on the node's address, from the node's
 * namespace; every web pod must answer (bounded wait for the rules). */
static void expect_node_port(void)
{
	char cmd[300], *o = NULL;
	snprintf(cmd, sizeof(cmd),
	    "for i in $(seq %d); do curl -s -m 2 http://" GW
	    ":%d/ || echo FAIL; done",
	    ROUND, node_port);
	bool want[NWEB] = { true, true, true };
	for (int t = 0; t < 40; t++) {
		free(o);
		o = NULL;
		kbt_run(cmd, &o);
		/* reuse the round parser: "R <far future> answers…" */
		char *line = NULL;
		for (char *p = o; p && *p; p++)
			if (*p == '\n')
				*p = ' ';
		if (asprintf(&line, "R 9999999999 %s", o ? o : "") < 0)
			break;
		int hits[NWEB];
		bool ok = round_ok(line, 0, want, hits);
		free(line);
		if (ok) {
			free(o);
			printf("# NodePort %d: hits %d/%d/%d\n", node_port,
			    hits[0], hits[1], hits[2]);
			return;
		}
		kn_sleep_ms(250);
	}
	fprintf(stderr, "# NodePort %d from the node: %s\n", node_port, o);
	free(o);
	dump_state();
	fail();
}

/* --- the tests -------------------------------------------------------------- */

static void test_deploy_and_expose(void **state)
{
	/* Each pod serves its hostname (its name); ready while /tmp/ready
	 * exists. */
	apply("web",
	    "apiVersion: apps/v1\nkind: Deployment\n"
	    "metadata: {name: web, namespace: default, labels: {app: web}}\n"
	    "spec:\n"
	    "  replicas: 3\n"
	    "  selector: {matchLabels: {app: web}}\n"
	    "  template:\n"
	    "    metadata: {labels: {app: web}}\n"
	    "    spec:\n"
	    "      terminationGracePeriodSeconds: 1\n"
	    "      containers:\n"
	    "      - name: httpd\n"
	    "        image: busybox\n"
	    "        command: [sh, -c, \"mkdir -p /www && hostname > "
	    "/www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www\"]\n"
	    "        ports: [{name: http, containerPort: 8080}]\n"
	    "        readinessProbe:\n"
	    "          exec: {command: [cat, /tmp/ready]}\n"
	    "          periodSeconds: 1\n"
	    "          failureThreshold: 1\n");
	kubectl_ok("expose deployment web --port=80 --target-port=8080");
	/* The NodePort service targets the container's port by name. */
	apply("web-np",
	    "apiVersion: v1\nkind: Service\n"
	    "metadata: {name: web-np, namespace: default}\n"
	    "spec:\n"
	    "  type: NodePort\n"
	    "  selector: {app: web}\n"
	    "  ports: [{name: http, port: 80, targetPort: http}]\n");
	wait_for("deployment web", "{.status.readyReplicas}", "=3");
	char *o = get("service web", "{.spec.clusterIP}");
	snprintf(cluster_ip, sizeof(cluster_ip), "%s", o);
	free(o);
	o = get("service web-np", "{.spec.ports[0].nodePort}");
	node_port = atoi(o);
	free(o);
	printf("# web ClusterIP %s, web-np NodePort %d\n", cluster_ip,
	    node_port);
	assert_int_equal(strncmp(cluster_ip, "10.", 3), 0);
	assert_true(node_port >= 30000 && node_port <= 32767);

	o = kn_kubectl(&kc, NULL,
	    "get pods -l app=web -o jsonpath='{range .items[*]}"
	    "{.metadata.name} {.status.podIP} "
	    "{.status.containerStatuses[0].containerID}{\"\\n\"}{end}'");
	char *save = NULL;
	int n = 0;
	for (char *l = strtok_r(o, "\n", &save); l && n < NWEB;
	     l = strtok_r(NULL, "\n", &save), n++)
		if (sscanf(l, "%127s %63s %127s", web_names[n], web_ips[n],
			web_cids[n]) != 3)
			break;
	free(o);
	for (int i = 0; i < n; i++)
		printf("# web pod %s %s %s\n", web_names[i], web_ips[i],
		    web_cids[i]);
	assert_int_equal(n, NWEB);
	/* the endpoint slice lists the three, ready */
	wait_for("endpointslices -l kubernetes.io/service-name=web",
	    "{.items[*].endpoints[*].conditions.ready}", "=true true true");
}

static void test_client_by_name(void **state)
{
	/* One line per round of ROUND requests: "R <start> <answer>…", a
	 * failure ends the round (with FAIL) at once. The first request of
	 * a round uses the short name (the search path), the others the
	 * full one. (Not wget -T: Debian's busybox 1.35 wget crashes with
	 * it; busybox timeout bounds each request instead.) */
	apply("client",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: client, namespace: default}\n"
	    "spec:\n"
	    "  terminationGracePeriodSeconds: 1\n"
	    "  containers:\n"
	    "  - name: client\n"
	    "    image: busybox\n"
	    "    command:\n"
	    "    - sh\n"
	    "    - -c\n"
	    "    - |\n"
	    "      cat /etc/resolv.conf\n"
	    "      nslookup web.default.svc.cluster.local\n"
	    "      echo NSLOOKUP-DONE\n"
	    "      timeout 5 wget -q -O- http://10.111.255.250/ 2>&1 |\n"
	    "        grep -q refused && echo UNALLOCATED-REFUSED\n"
	    "      get() { timeout 3 wget -q -O- http://$1/ 2>&1; }\n"
	    "      while true; do\n"
	    "        t=$(date +%s); r=''; e=''\n"
	    "        for i in $(seq 20); do\n"
	    "          n=web.default.svc.cluster.local; [ $i = 1 ] && n=web\n"
	    "          if o=$(get $n); then r=\"$r $o\"\n"
	    "          else r=\"$r FAIL\"; e=$o; break; fi\n"
	    "        done\n"
	    "        echo \"R $t$r\"\n"
	    "        [ -z \"$e\" ] || echo \"E $e\"\n"
	    "        sleep 1\n"
	    "      done\n");
	/* the node's netns has no route out: nothing can leave */
	char *r = NULL;
	kbt_run("ip route show default", &r);
	assert_string_equal(r ? r : "", "");
	free(r);
	wait_for("pod client", "{.status.phase}", "=Running");
	const bool all[NWEB] = { true, true, true };
	expect_traffic(0, all, "nftables");

	char *logs = kn_kubectl(&kc, NULL, "logs client --limit-bytes=4000");
	char *end = strstr(logs, "NSLOOKUP-DONE");
	printf("# client's resolv.conf and nslookup:\n%.*s\n",
	    end ? (int)(end - logs) : 400, logs);
	expect_in(logs, "nameserver " GW "\n");
	expect_in(logs, "options ndots:5");
	assert_non_null(end);
	/* an address of the service CIDR that is no service's is refused
	 * at once (the proxy's reject), it does not wait for a timeout */
	expect_in(end, "UNALLOCATED-REFUSED");
	*end = '\0';
	expect_in(logs, cluster_ip);
	free(logs);
}

static char *dig(const char *args)
{
	char cmd[512], *out = NULL;
	snprintf(cmd, sizeof(cmd), "dig @127.0.0.1 +time=2 +tries=1 %s", args);
	kbt_run(cmd, &out);
	return out ? out : strdup("");
}

static void test_dig_from_node(void **state)
{
	char *o = dig("+short web.default.svc.cluster.local A");
	printf("# dig A: %s", o);
	expect_in(o, cluster_ip);
	free(o);
	o = dig("+tcp +short web.default.svc.cluster.local A");
	expect_in(o, cluster_ip);
	free(o);
	o = dig("+short _http._tcp.web-np.default.svc.cluster.local SRV");
	printf("# dig SRV: %s", o);
	expect_in(o, " 80 web-np.default.svc.cluster.local.");
	free(o);
	char args[128];
	snprintf(args, sizeof(args), "+short -x %s", cluster_ip);
	o = dig(args);
	printf("# dig PTR: %s", o);
	expect_in(o, "web.default.svc.cluster.local.");
	free(o);
	o = dig("nosuch.default.svc.cluster.local A");
	expect_in(o, "status: NXDOMAIN");
	free(o);
}

static void test_not_ready_gets_nothing(void **state)
{
	int pid = web_pid(0);
	printf("# %s container pid %d\n", web_names[0], pid);
	assert_true(pid > 0);
	char path[128];
	snprintf(path, sizeof(path), "/proc/%d/root/tmp/ready", pid);
	assert_int_equal(unlink(path), 0);
	char want[128];
	snprintf(want, sizeof(want), "%s=false", web_ips[0]);
	wait_for("endpointslices -l kubernetes.io/service-name=web",
	    "{range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready} {end}",
	    want);
	const bool two[NWEB] = { false, true, true };
	expect_traffic((long)time(NULL), two, "one pod not ready");

	assert_true(kn_write(path, ""));
	wait_for("endpointslices -l kubernetes.io/service-name=web",
	    "{.items[*].endpoints[*].conditions.ready}", "=true true true");
	const bool all[NWEB] = { true, true, true };
	expect_traffic((long)time(NULL), all, "ready again");
}

static void test_node_port(void **state)
{
	expect_backend(true, false, false);
	expect_node_port();
}

/* Restart the host with another backend: the pods are adopted, traffic
 * by name flows, nothing of the previous backend is left. */
static void switch_backend(const char *backend, bool nft, bool ipt, bool us)
{
	assert_true(stop());
	/* a stopped proxy cleans up after itself */
	expect_backend(false, false, false);
	assert_true(start(backend));
	expect_backend(nft, ipt, us);
	const bool all[NWEB] = { true, true, true };
	expect_traffic((long)time(NULL), all, backend);
	expect_node_port();
}

static void test_switch_backends(void **state)
{
	char *before = get("pods -l app=web",
	    "{.items[*].status.containerStatuses[0].containerID}");
	switch_backend("proxy-iptables", false, true, false);
	switch_backend("proxy-userspace", false, false, true);
	switch_backend("proxy-nftables", true, false, false);
	/* the very same containers served all along */
	char *after = get("pods -l app=web",
	    "{.items[*].status.containerStatuses[0].containerID}");
	assert_string_equal(after, before);
	free(before);
	free(after);
}

/* Poll a shell command until its output equals want; the last output
 * (malloc'd). */
static char *run_until(const char *cmd, const char *want, int ms)
{
	char *o = NULL;
	for (int waited = 0; waited <= ms; waited += 200) {
		free(o);
		o = NULL;
		kbt_run(cmd, &o);
		if (o == NULL)
			o = strdup("");
		if (!strcmp(o, want))
			break;
		kn_sleep_ms(200);
	}
	return o;
}

static void test_cleanup(void **state)
{
	kubectl_ok("delete service web web-np");
	char *o = NULL;
	for (int i = 0; i < 50; i++) {
		free(o);
		o = dig("web.default.svc.cluster.local A");
		if (strstr(o, "NXDOMAIN"))
			break;
		kn_sleep_ms(100);
	}
	expect_in(o, "status: NXDOMAIN");
	free(o);
	kubectl_ok("delete deployment web --cascade=foreground --timeout=40s");
	kubectl_ok("delete pod client --timeout=40s");
	char cmd[1200];
	snprintf(cmd, sizeof(cmd),
	    "HOME='%s' KUBECONFIG='%s' timeout 30 kubectl get pods -o name",
	    kc.home, kc.kubeconfig);
	o = run_until(cmd, "", 20000);
	assert_string_equal(o, "");
	free(o);
	/* The kubelet tears the sandboxes down (containers, veths) once the
	 * pods are gone from the API; then the host stops. (kubus-px0 is the
	 * proxy's: a veth where the kernel has no dummy driver.) */
	snprintf(cmd, sizeof(cmd),
	    "runc --root '%s' list -q | wc -l; "
	    "ip -o link show type veth | grep -vc ': kubus-px0'",
	    runc_root());
	o = run_until(cmd, "0\n0\n", 20000);
	printf("# runc containers, veths left: %s", o);
	if (strcmp(o, "0\n0\n"))
		dump_state();
	assert_string_equal(o, "0\n0\n");
	free(o);
	assert_true(stop());
	/* and the stopped proxy left no rule */
	expect_backend(false, false, false);
	/* every pod address went back to host-local */
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/kubelet/" NODE "/cni/networks/kubus",
	    data);
	static const char *const except[] = { "lock", "last_reserved_ip.0",
		NULL };
	assert_int_equal(kn_dir_count(dir, except), 0);
}

int main(void)
{
	const char *why = kn_missing_runc();
	if (why == NULL &&
	    system("command -v nft && command -v iptables-save && "
		   "command -v dig && command -v curl >/dev/null") != 0)
		why = "no nft, iptables, dig (bind9-dnsutils) or curl";
	/* Pod to ClusterIP to a pod on the same bridge: the reply is bridged
	 * and must pass netfilter to be un-DNATed, as for kube-proxy. */
	if (why == NULL &&
	    access("/proc/sys/net/bridge/bridge-nf-call-iptables", F_OK) != 0 &&
	    (system("modprobe br_netfilter 2>/dev/null") != 0 ||
		access("/proc/sys/net/bridge/bridge-nf-call-iptables", F_OK)))
		why =
		    "no br_netfilter (bridged replies would skip the proxy's NAT)";
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deploy_and_expose),
		cmocka_unit_test(test_client_by_name),
		cmocka_unit_test(test_dig_from_node),
		cmocka_unit_test(test_not_ready_gets_nothing),
		cmocka_unit_test(test_node_port),
		cmocka_unit_test(test_switch_backends),
		cmocka_unit_test(test_cleanup),
	};
	return kn_main("e2e_services", "kbt-e2es", why, netns_name, tests, group_setup,
	    group_teardown);
}
