/* tests/unit/test_kubelet_cni.c — the kubelet's pod networking (netns +
 * real CNI bridge/host-local/loopback), env valueFrom, volumes,
 * resolv.conf and hosts, adoption after a restart and cleanup, with a
 * runtime that runs no processes (tests/plugins/runtime_record.c: it
 * writes the env and mounts the kubelet resolved into the container log,
 * and keeps its state in files so a restarted kubelet can adopt it).
 *
 * The whole test process moves into its own network namespace
 * (kbt-klc-<pid>, lo only, no route out) before the host starts: the
 * bridge, the pod veths and the API server live there. Objects are made
 * and read with real kubectl. Needs root, iproute2, the CNI plugins and
 * kubectl; skips (saying why) otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"
#include "kubelet_netns.h"

#define NODE "node-1"
#define CIDR_PREFIX "10.244.7."
#define WAIT_MS 20000
#define TMPFS_MAGIC_ 0x01021994

static char netns_name[KN_NETNS_LEN];
static char *tmp, *data;
static struct kbt_host *host;
static struct kn_kubectl kc;

static char *host_yaml(bool kubelet)
{
	char *y;
	if (asprintf(&y,
		"host: {log_level: warn, data_dir: \"%s\"}\n"
		"bus: {listen: []}\n"
		"plugins:\n"
		"  - name: store\n"
		"    use: store-lmdb\n"
		"    config: {sync: false}\n"
		"  - name: apiserver\n"
		"    use: apiserver\n"
		"    config: {listen: \"127.0.0.1:0\"}\n"
		"%s",
		data,
		kubelet ? "  - name: kubelet\n"
			  "    use: kubelet\n"
			  "    config:\n"
			  "      node_name: " NODE "\n"
			  "      runtime: runtime_record\n"
			  "      network: cni\n"
			  "      pod_cidr: 10.244.7.0/24\n"
			  "      bridge: kbtc0\n"
			  "      cluster_dns: 10.96.0.10\n"
			  "      sync_period: 200ms\n"
			  "      lease_interval: 1s\n"
			  "      cpu: \"2\"\n"
			  "      memory: 4Gi\n"
			  /* A second node with no pod_cidr: it waits for
			   * Node.spec.podCIDR. */
			  "  - name: kubelet2\n"
			  "    use: kubelet\n"
			  "    config:\n"
			  "      node_name: node-2\n"
			  "      runtime: runtime_record\n"
			  "      runtime_config: {dir: runtime-record-2}\n"
			  "      network: cni\n"
			  "      bridge: kbtc1\n"
			  "      sync_period: 200ms\n"
			  "      lease_interval: 1s\n"
			  /* A third whose CNI plugins are missing. */
			  "  - name: kubelet3\n"
			  "    use: kubelet\n"
			  "    config:\n"
			  "      node_name: node-3\n"
			  "      runtime: runtime_record\n"
			  "      runtime_config: {dir: runtime-record-3}\n"
			  "      network: cni\n"
			  "      pod_cidr: 10.244.6.0/24\n"
			  "      cni_bin_dir: /nonexistent/cni\n"
			  "      bridge: kbtc2\n"
			  "      sync_period: 200ms\n"
			  "      lease_interval: 1s\n" :
			  "") < 0)
		return NULL;
	return y;
}

static bool start_host(bool kubelet)
{
	char err[1024];
	char *y = host_yaml(kubelet);
	host = y ? kbt_host_start(y, err, sizeof(err)) : NULL;
	free(y);
	if (host == NULL)
		fprintf(stderr, "# host: %s\n", err);
	return host != NULL;
}

static int group_setup(void **state)
{
	tmp = kbt_mkdtemp("klcni");
	if (tmp == NULL || asprintf(&data, "%s/data", tmp) < 0 ||
	    mkdir(data, 0700) != 0)
		return -1;
	snprintf(kc.home, sizeof(kc.home), "%s", tmp);
	snprintf(kc.kubeconfig, sizeof(kc.kubeconfig), "%s/admin.kubeconfig",
	    data);
	return start_host(true) ? 0 : -1;
}

static int group_teardown(void **state)
{
	if (host)
		kbt_host_stop(host);
	host = NULL;
	/* Whatever a failed test left: runc-free, so netns names only. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd),
	    "for f in /run/netns/kubus-*; do [ -e \"$f\" ] || continue; "
	    "grep -qs \"$(basename $f)\" '%s/leftover' && ip netns del $(basename $f); done; true",
	    tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "# cleanup of pod netns failed\n");
	/* tmpfs volumes of pods a failed test left behind. */
	snprintf(cmd, sizeof(cmd),
	    "grep -o ' %s/[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount -l",
	    tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "# cleanup of mounts failed\n");
	if (!getenv("KUBUS_KEEP"))
		kbt_rmrf(tmp);
	free(tmp);
	free(data);
	return 0;
}

/* Remember a pod's netns for the cleanup of a failed run. */
static void note_netns(const char *uid)
{
	char ns[128], path[600];
	kn_pod_netns(uid, ns, sizeof(ns));
	snprintf(path, sizeof(path), "%s/leftover", tmp);
	FILE *f = fopen(path, "a");
	if (f) {
		fprintf(f, "%s\n", strrchr(ns, '/') + 1);
		fclose(f);
	}
}

static char *apply(const char *name, const char *yaml)
{
	int st;
	char *out = kn_apply(&kc, tmp, name, yaml, &st);
	assert_int_equal(st, 0);
	return out;
}

static char *get(const char *what, const char *jp)
{
	return kn_kubectl(&kc, NULL, "get %s -o jsonpath='%s'", what, jp);
}

static char *slurp_fmt(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static char *slurp_fmt(const char *fmt, ...)
{
	char path[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	char *s = kbt_slurp(path);
	if (s == NULL)
		fprintf(stderr, "# cannot read %s\n", path);
	return s;
}

static void expect_in(const char *hay, const char *needle)
{
	if (hay == NULL || strstr(hay, needle) == NULL)
		fprintf(stderr, "# expected \"%s\" in:\n%s\n", needle,
		    hay ? hay : "(null)");
	assert_non_null(hay);
	assert_non_null(strstr(hay, needle));
}

static const char objects[] =
    "apiVersion: v1\n"
    "kind: ConfigMap\n"
    "metadata: {name: cfg, namespace: default}\n"
    "data:\n"
    "  greeting: hello\n"
    "  app.conf: \"x=1\\n\"\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata: {name: sec, namespace: default}\n"
    "data:\n"
    "  password: czNjcmV0\n" /* s3cret */
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: web, namespace: default, labels: {app: webby}}\n"
    "spec:\n"
    "  nodeName: " NODE "\n"
    "  terminationGracePeriodSeconds: 1\n"
    "  hostAliases: [{ip: 10.1.2.3, hostnames: [foo.local, bar]}]\n"
    "  containers:\n"
    "  - name: main\n"
    "    image: busybox\n"
    "    envFrom: [{configMapRef: {name: cfg}, prefix: CFG_}]\n"
    "    env:\n"
    "    - {name: A, value: alpha}\n"
    "    - {name: B, value: \"$(A)-beta\"}\n"
    "    - {name: ESC, value: \"$$(A)\"}\n"
    "    - {name: UNDEF, value: \"$(NOPE)\"}\n"
    "    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n"
    "    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}\n"
    "    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n"
    "    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}\n"
    "    - {name: APP, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}\n"
    "    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}\n"
    "    - {name: PASS, valueFrom: {secretKeyRef: {name: sec, key: password}}}\n"
    "    - {name: OPT, valueFrom: {configMapKeyRef: {name: nope, key: x, optional: true}}}\n"
    "    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory}}}\n"
    "    resources: {limits: {memory: 64Mi}}\n"
    "    volumeMounts:\n"
    "    - {name: cfgvol, mountPath: /etc/app}\n"
    "    - {name: secvol, mountPath: /secrets}\n"
    "    - {name: scratch, mountPath: /scratch}\n"
    "    - {name: scratch, mountPath: /sub, subPath: a/b}\n"
    "    - {name: mem, mountPath: /mem}\n"
    "    - {name: hp, mountPath: /host, readOnly: true}\n"
    "  volumes:\n"
    "  - name: cfgvol\n"
    "    configMap: {name: cfg, items: [{key: app.conf, path: conf/app.conf, mode: 0600}]}\n"
    "  - name: secvol\n"
    "    secret: {secretName: sec}\n"
    "  - {name: scratch, emptyDir: {}}\n"
    "  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}\n"
    "  - name: hp\n"
    "    hostPath: {path: HOSTPATH, type: DirectoryOrCreate}\n";

static char web_uid[64], web_ip[64];

static char *pod_dir(const char *uid)
{
	char *d;
	if (asprintf(&d, "%s/kubelet/" NODE "/pods/%s", data, uid) < 0)
		return NULL;
	return d;
}

static void test_pod_network(void **state)
{
	char hostpath[600], *yaml;
	snprintf(hostpath, sizeof(hostpath), "%s/hostpath-dir", tmp);
	const char *at = strstr(objects, "HOSTPATH");
	assert_true(asprintf(&yaml, "%.*s%s%s", (int)(at - objects), objects,
			hostpath, at + 8) > 0);
	free(apply("web", yaml));
	free(yaml);

	bool ok;
	char *out = kn_wait(&kc, "pod web", "{.status.phase}", "=Running",
	    WAIT_MS, &ok);
	free(out);
	assert_true(ok);
	out = get("pod web", "{.metadata.uid}");
	snprintf(web_uid, sizeof(web_uid), "%s", out);
	free(out);
	note_netns(web_uid);
	out = get("pod web", "{.status.podIP}");
	snprintf(web_ip, sizeof(web_ip), "%s", out);
	free(out);
	printf("# web: uid %s ip %s\n", web_uid, web_ip);
	assert_int_equal(strncmp(web_ip, CIDR_PREFIX, strlen(CIDR_PREFIX)), 0);

	/* The netns is a real one, named after the uid. */
	char ns[128];
	kn_pod_netns(web_uid, ns, sizeof(ns));
	assert_true(kn_is_netns(ns));
	/* eth0 in it has the pod IP; the bridge is in the test's netns. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "nsenter --net=%s ip -4 -o addr show eth0",
	    ns);
	char *o = NULL;
	assert_int_equal(kbt_run(cmd, &o), 0);
	expect_in(o, web_ip);
	free(o);
	assert_int_equal(kbt_run("ip -o link show kbtc0", &o), 0);
	free(o);
	o = NULL;

	/* Reachable from this (the node's) namespace: an HTTP server in the
	 * pod's namespace answers on the pod IP through the bridge. */
	char www[600];
	snprintf(www, sizeof(www), "%s/www", tmp);
	mkdir(www, 0755);
	snprintf(cmd, sizeof(cmd), "%s/index.html", www);
	assert_true(kn_write(cmd, "hello from the pod netns\n"));
	char netarg[200];
	snprintf(netarg, sizeof(netarg), "--net=%s", ns);
	char *argv[] = { "/usr/bin/nsenter", netarg, "/bin/busybox", "httpd",
		"-f", "-p", "8080", "-h", www, NULL };
	char logp[600];
	snprintf(logp, sizeof(logp), "%s/httpd.log", tmp);
	pid_t httpd = kbt_spawn(argv, logp);
	assert_true(httpd > 0);
	snprintf(cmd, sizeof(cmd), "wget -T 2 -qO- http://%s:8080/", web_ip);
	int rc = -1;
	for (int i = 0; i < 40 && rc != 0; i++) {
		free(o);
		o = NULL;
		rc = kbt_run(cmd, &o);
		if (rc)
			kn_sleep_ms(100);
	}
	kbt_kill(httpd);
	if (rc)
		fprintf(stderr, "# wget: %s\n", o);
	assert_int_equal(rc, 0);
	expect_in(o, "hello from the pod netns");
	free(o);
}

static void test_env_and_mounts(void **state)
{
	assert_true(web_uid[0]);
	char *log = slurp_fmt("%s/kubelet/" NODE
			      "/logs/default_web_%s/main/0.log",
	    data, web_uid);
	expect_in(log, "ENV A=alpha\n");
	expect_in(log, "ENV B=alpha-beta\n");
	expect_in(log, "ENV ESC=$(A)\n");
	expect_in(log, "ENV UNDEF=$(NOPE)\n");
	expect_in(log, "ENV POD_NAME=web\n");
	expect_in(log, "ENV POD_NS=default\n");
	char want[200];
	snprintf(want, sizeof(want), "ENV POD_IP=%s\n", web_ip);
	expect_in(log, want);
	expect_in(log, "ENV NODE=" NODE "\n");
	expect_in(log, "ENV APP=webby\n");
	expect_in(log, "ENV GREETING=hello\n");
	expect_in(log, "ENV PASS=s3cret\n");
	expect_in(log, "ENV CFG_greeting=hello\n");
	expect_in(log, "ENV MEM=67108864\n");
	assert_null(strstr(log, "ENV OPT="));
	expect_in(log, " /etc/app ro\n");
	expect_in(log, " /secrets ro\n");
	expect_in(log, " /scratch rw\n");
	expect_in(log, "/a/b /sub rw\n");
	expect_in(log, " /host ro\n");
	expect_in(log, "/hosts /etc/hosts ro\n");
	expect_in(log, "/resolv.conf /etc/resolv.conf ro\n");
	free(log);

	char *dir = pod_dir(web_uid);
	char *s =
	    slurp_fmt("%s/volumes/kubernetes.io~configmap/cfgvol/conf/app.conf",
		dir);
	assert_non_null(s);
	assert_string_equal(s, "x=1\n");
	free(s);
	char path[1200];
	struct stat st;
	snprintf(path, sizeof(path),
	    "%s/volumes/kubernetes.io~configmap/cfgvol/conf/app.conf", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Not in items: not written. */
	snprintf(path, sizeof(path),
	    "%s/volumes/kubernetes.io~configmap/cfgvol/greeting", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	s = slurp_fmt("%s/volumes/kubernetes.io~secret/secvol/password", dir);
	assert_non_null(s);
	assert_string_equal(s, "s3cret");
	free(s);
	struct statfs fs;
	snprintf(path, sizeof(path), "%s/volumes/kubernetes.io~empty-dir/mem",
	    dir);
	assert_int_equal(statfs(path, &fs), 0);
	assert_true((unsigned long)fs.f_type == TMPFS_MAGIC_);
	snprintf(path, sizeof(path), "%s/hostpath-dir", tmp);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	s = slurp_fmt("%s/resolv.conf", dir);
	expect_in(s,
	    "search default.svc.cluster.local svc.cluster.local cluster.local");
	expect_in(s, "nameserver 10.96.0.10\n");
	expect_in(s, "options ndots:5\n");
	free(s);
	s = slurp_fmt("%s/hosts", dir);
	expect_in(s, "127.0.0.1\tlocalhost\n");
	snprintf(want, sizeof(want), "%s\tweb\n", web_ip);
	expect_in(s, want);
	expect_in(s, "10.1.2.3\tfoo.local\tbar\n");
	free(s);
	free(dir);
}

/* A missing ConfigMap is a waiting reason, not a crash; making it lets
 * the pod start. */
static void test_missing_configmap(void **state)
{
	free(apply("needy",
	    "apiVersion: v1\n"
	    "kind: Pod\n"
	    "metadata: {name: needy, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  terminationGracePeriodSeconds: 0\n"
	    "  containers:\n"
	    "  - name: main\n"
	    "    image: busybox\n"
	    "    env: [{name: X, valueFrom: {configMapKeyRef: {name: later, key: k}}}]\n"));
	bool ok;
	char *out = kn_wait(&kc, "pod needy",
	    "{.status.containerStatuses[0].state.waiting.reason}",
	    "=CreateContainerConfigError", WAIT_MS, &ok);
	free(out);
	assert_true(ok);
	out = get("pod needy",
	    "{.status.containerStatuses[0].state.waiting.message}");
	assert_string_equal(out, "configmap \"later\" not found");
	free(out);
	out = get("pod needy", "{.metadata.uid}");
	note_netns(out);
	free(out);
	free(apply("later",
	    "apiVersion: v1\nkind: ConfigMap\n"
	    "metadata: {name: later, namespace: default}\n"
	    "data: {k: v}\n"));
	out = kn_wait(&kc, "pod needy", "{.status.phase}", "=Running", WAIT_MS,
	    &ok);
	free(out);
	assert_true(ok);
}

/* A pod on the host network gets the node's IP and no netns. */
static void test_host_network(void **state)
{
	free(apply("hostnet",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: hostnet, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  hostNetwork: true\n"
	    "  terminationGracePeriodSeconds: 0\n"
	    "  containers: [{name: main, image: busybox}]\n"));
	bool ok;
	char *out = kn_wait(&kc, "pod hostnet", "{.status.phase}", "=Running",
	    WAIT_MS, &ok);
	free(out);
	assert_true(ok);
	char *ips = get("pod hostnet", "{.status.podIP} {.status.hostIP}");
	char a[64] = "", b[64] = "";
	sscanf(ips, "%63s %63s", a, b);
	free(ips);
	assert_true(a[0]);
	assert_string_equal(a, b);
	char *uid = get("pod hostnet", "{.metadata.uid}");
	char ns[128];
	kn_pod_netns(uid, ns, sizeof(ns));
	assert_int_not_equal(access(ns, F_OK), 0);
	free(uid);
	free(kn_kubectl(&kc, NULL, "delete pod hostnet --wait=true"));
}

/* No pod CIDR: pods wait with NetworkNotReady until the Node gets one. */
static void test_pod_cidr_from_node(void **state)
{
	free(apply("nocidr",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: nocidr, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: node-2\n"
	    "  terminationGracePeriodSeconds: 0\n"
	    "  containers: [{name: main, image: busybox}]\n"));
	bool ok;
	char *out = kn_wait(&kc, "pod nocidr",
	    "{.status.containerStatuses[0].state.waiting.reason}",
	    "=NetworkNotReady", WAIT_MS, &ok);
	free(out);
	assert_true(ok);
	out = get("pod nocidr", "{.metadata.uid}");
	note_netns(out);
	free(out);
	int st;
	out = kn_kubectl(&kc, &st,
	    "patch node node-2 -p '{\"spec\":{\"podCIDR\":\"10.244.8.0/24\",\"podCIDRs\":[\"10.244.8.0/24\"]}}'");
	if (st)
		fprintf(stderr, "# patch: %s\n", out);
	free(out);
	assert_int_equal(st, 0);
	out = kn_wait(&kc, "pod nocidr", "{.status.phase}", "=Running", WAIT_MS,
	    &ok);
	free(out);
	if (!ok) {
		out = kn_kubectl(&kc, NULL, "get pod nocidr -o yaml");
		fprintf(stderr, "# %s\n", out);
		free(out);
	}
	assert_true(ok);
	out = get("pod nocidr", "{.status.podIP}");
	assert_int_equal(strncmp(out, "10.244.8.", 9), 0);
	free(out);
}

/* CNI failing (no plugins): the pod waits, saying why; no netns stays. */
static void test_cni_failure(void **state)
{
	free(apply("nocni",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: nocni, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: node-3\n"
	    "  terminationGracePeriodSeconds: 0\n"
	    "  containers: [{name: main, image: busybox}]\n"));
	bool ok;
	char *out = kn_wait(&kc, "pod nocni",
	    "{.status.containerStatuses[0].state.waiting.message}",
	    "/nonexistent/cni/loopback", WAIT_MS, &ok);
	free(out);
	assert_true(ok);
	out = get("pod nocni",
	    "{.status.phase} {.status.containerStatuses[0].state.waiting.reason}");
	assert_string_equal(out, "Pending ContainerCreating");
	free(out);
	char *uid = get("pod nocni", "{.metadata.uid}"), ns[128];
	note_netns(uid);
	kn_pod_netns(uid, ns, sizeof(ns));
	/* Each retry makes the netns and takes it down when CNI fails; a
	 * check can land inside one, so it must be gone soon, not at once. */
	int tries = 0;
	while (access(ns, F_OK) == 0 && tries++ < 100)
		usleep(50 * 1000);
	assert_int_not_equal(access(ns, F_OK), 0);
	free(uid);
	free(kn_kubectl(&kc, NULL, "delete pod nocni --wait=true"));
	out = kn_kubectl(&kc, NULL, "get pods nocni -o name");
	expect_in(out, "NotFound");
	free(out);
}

static char *uid_of(const char *pod)
{
	char what[200];
	snprintf(what, sizeof(what), "pod %s", pod);
	return get(what, "{.metadata.uid}");
}

/* Host-local reservations: one file per IP in the network's data dir. */
static int reservations_of(const char *node)
{
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/kubelet/%s/cni/networks/kubus", data,
	    node);
	static const char *const except[] = { "lock", "last_reserved_ip.0",
		NULL };
	return kn_dir_count(dir, except);
}

static int reservations(void)
{
	return reservations_of(NODE);
}

/* Stop the host (the kubelet must leave containers running), delete a
 * pod while no kubelet runs, start again: the running container is
 * adopted (same id, same start, same restartCount), the deleted pod's
 * sandbox and network are cleaned up. */
static void test_restart_adopts(void **state)
{
	free(apply("gone",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: gone, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  containers: [{name: main, image: busybox}]\n"));
	bool ok;
	char *out = kn_wait(&kc, "pod gone", "{.status.phase}", "=Running",
	    WAIT_MS, &ok);
	free(out);
	assert_true(ok);
	char *gone_uid = uid_of("gone");
	note_netns(gone_uid);
	char gone_ns[128];
	kn_pod_netns(gone_uid, gone_ns, sizeof(gone_ns));
	assert_true(kn_is_netns(gone_ns));
	assert_int_equal(reservations(), 3); /* web, needy, gone */

	const char *jp =
	    "{.status.containerStatuses[0].containerID} "
	    "{.status.containerStatuses[0].state.running.startedAt} "
	    "{.status.containerStatuses[0].restartCount} "
	    "{.status.podIP}";
	char *before = get("pod web", jp);
	printf("# before: %s\n", before);

	kbt_host_stop(host);
	host = NULL;
	/* Still "running" in the runtime: the kubelet killed nothing. */
	char cmd[800], *o = NULL;
	snprintf(cmd, sizeof(cmd),
	    "grep -l ' main [0-9]* 0 2 ' %s/runtime-record/containers/* | wc -l",
	    data);
	assert_int_equal(kbt_run(cmd, &o), 0);
	assert_int_equal(atoi(o), 3);
	free(o);

	/* Delete `gone` with no kubelet to see it. */
	assert_true(start_host(false));
	out = kn_kubectl(&kc, NULL, "delete pod gone --grace-period=0 --force");
	free(out);
	out = kn_kubectl(&kc, NULL, "get pod gone");
	expect_in(out, "NotFound");
	free(out);
	kbt_host_stop(host);
	host = NULL;

	assert_true(start_host(true));
	char *after = NULL;
	for (int i = 0; i < WAIT_MS / 250; i++) {
		free(after);
		after = get("pod web", jp);
		if (!strcmp(after, before))
			break;
		kn_sleep_ms(250);
	}
	printf("# after:  %s\n", after);
	assert_string_equal(after, before);
	free(before);
	free(after);
	out = kn_wait(&kc, "pod web",
	    "{.status.conditions[?(@.type==\"Ready\")].status}", "=True",
	    WAIT_MS, &ok);
	free(out);
	assert_true(ok);

	/* The deleted pod's sandbox, netns and IP are gone. */
	for (int i = 0; i < WAIT_MS / 100 && access(gone_ns, F_OK) == 0; i++)
		kn_sleep_ms(100);
	assert_int_not_equal(access(gone_ns, F_OK), 0);
	char *gdir = pod_dir(gone_uid);
	for (int i = 0; i < 50 && access(gdir, F_OK) == 0; i++)
		kn_sleep_ms(100);
	assert_int_not_equal(access(gdir, F_OK), 0);
	free(gdir);
	assert_int_equal(reservations(), 2);
	snprintf(cmd, sizeof(cmd),
	    "grep -l '%s' %s/runtime-record/sandboxes/* 2>/dev/null | wc -l",
	    gone_uid, data);
	assert_int_equal(kbt_run(cmd, &o), 0);
	assert_int_equal(atoi(o), 0);
	free(o);
	free(gone_uid);
}

/* After every pod is deleted nothing is left: netns, veths, IP
 * reservations, tmpfs mounts, pod dirs, runtime state. */
static void test_cleanup(void **state)
{
	char *uids[3] = { uid_of("web"), uid_of("needy"), uid_of("nocidr") };
	char *out = kn_kubectl(&kc, NULL,
	    "delete pod web needy nocidr --wait=true --timeout=30s");
	printf("# %s", out);
	free(out);
	out = kn_kubectl(&kc, NULL, "get pods -o name");
	assert_string_equal(out, "");
	free(out);
	for (int i = 0; i < 3; i++) {
		char ns[128];
		kn_pod_netns(uids[i], ns, sizeof(ns));
		for (int w = 0; w < 50 && access(ns, F_OK) == 0; w++)
			kn_sleep_ms(100);
		assert_int_not_equal(access(ns, F_OK), 0);
		char *d = pod_dir(uids[i]);
		assert_int_not_equal(access(d, F_OK), 0);
		free(d);
		free(uids[i]);
	}
	assert_int_equal(reservations(), 0);
	assert_int_equal(reservations_of("node-2"), 0);
	char *o = NULL;
	/* Only lo and the bridge are left in the node's namespace. */
	assert_int_equal(kbt_run("ip -o link show type veth | wc -l", &o), 0);
	assert_int_equal(atoi(o), 0);
	free(o);
	char cmd[800];
	snprintf(cmd, sizeof(cmd), "grep -c '%s' /proc/self/mountinfo", data);
	kbt_run(cmd, &o);
	assert_int_equal(atoi(o), 0);
	free(o);
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/runtime-record/containers", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/runtime-record/sandboxes", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/runtime-record-2/containers", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/runtime-record-2/sandboxes", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/kubelet/" NODE "/pods", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/kubelet/node-2/pods", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/kubelet/node-3/pods", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
}

/* Bad kubelet config is a clear error at start, not a crash. */
static void test_bad_config(void **state)
{
	static const char *const bad[][2] = {
		{ "pod_cidr: 10.244.0.0", "pod_cidr" },
		{ "pod_cidr: nonsense/24", "pod_cidr" },
		{ "cluster_dns: 10.96.0", "cluster_dns" },
		{ "network: magic", "network" },
		{ "bridge: a-name-far-too-long-for-linux", "bridge" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char y[1024], err[1024] = "";
		snprintf(y, sizeof(y),
		    "host: {log_level: error}\n"
		    "bus: {listen: []}\n"
		    "plugins:\n"
		    "  - name: kubelet\n"
		    "    use: kubelet\n"
		    "    config: {runtime: runtime-fake, %s}\n",
		    bad[i][0]);
		struct kbt_host *h = kbt_host_start(y, err, sizeof(err));
		if (h)
			kbt_host_stop(h);
		assert_null(h);
		printf("# %s -> %s\n", bad[i][0], err);
		assert_non_null(strstr(err, bad[i][1]));
	}
}

int main(void)
{
	const char *why = kn_missing();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pod_network),
		cmocka_unit_test(test_env_and_mounts),
		cmocka_unit_test(test_missing_configmap),
		cmocka_unit_test(test_host_network),
		cmocka_unit_test(test_pod_cidr_from_node),
		cmocka_unit_test(test_cni_failure),
		cmocka_unit_test(test_restart_adopts),
		cmocka_unit_test(test_cleanup),
		cmocka_unit_test(test_bad_config),
	};
	return kn_main("kubelet_cni", "kbt-klc", why, netns_name, tests, group_setup,
	    group_teardown);
}
