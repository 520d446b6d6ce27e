/* tests/unit/test_kubelet_runc.c — real pods end to end: `kubus run`
 * (store-lmdb, apiserver, scheduler, kubelet with runtime-runc and CNI) as
 * a child process inside a network namespace this test makes
 * (kbt-klr-<pid>: lo only, no route out; the bridge and the pod veths live
 * there), driven with real kubectl:
 *   - busybox httpd serving a file from a configMap volume reaches Running
 *     and answers HTTP on its pod IP from the node's namespace;
 *   - env (value, $(VAR), fieldRef, configMapKeyRef), args, a configMap
 *     volume, an emptyDir shared with an init container and resolv.conf,
 *     seen from inside through `kubectl logs`;
 *   - SIGTERM to the host leaves the containers running; a pod deleted
 *     while no kubelet runs is cleaned up at the next start, the running
 *     one is adopted (same container id, start time and restartCount);
 *   - after deleting everything: no pod netns, no veth, no host-local
 *     reservation, no runc container, no overlay mount, no pod cgroup.
 * Needs root, runc, iproute2, the CNI plugins, kubectl, busybox-static and
 * the runtime-runc plugin; skips (saying why) otherwise. */
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
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "kubelet_netns.h"

#define NODE "klr-node"
#define CIDR_PREFIX "10.244.9."
#define WAIT_MS 30000

static char netns_name[KN_NETNS_LEN];
static char *tmp, *data;
static struct kbt_kubus kubus;
static struct kn_kubectl kc;
static char uids[8][64];
static int nuids;

static const char *runc_root(void)
{
	static char p[600];
	snprintf(p, sizeof(p), "%s/runc", data);
	return p;
}

static char *config(bool kubelet)
{
	char rtc[800], kl[1500], *y;
	/* Without the image build's busybox.tar, a rootfs made here. */
	kbt_runc_images(rtc, sizeof(rtc), tmp);
	snprintf(kl, sizeof(kl),
	    "  - name: kubelet\n"
	    "    use: kubelet\n"
	    "    config:\n"
	    "      runtime: runtime-runc\n"
	    "      runtime_config: %s\n"
	    "      pod_cidr: 10.244.9.0/24\n"
	    "      bridge: kbtr0\n"
	    "      cluster_dns: 10.96.0.10\n"
	    "      sync_period: 500ms\n",
	    rtc);
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
		"    config: {listen: \"127.0.0.1:0\"}\n"
		"  - name: scheduler\n"
		"    use: scheduler\n"
		"%s",
		kubelet ? kl : "") < 0)
		return NULL;
	return y;
}

static bool start(bool kubelet)
{
	char *y = config(kubelet);
	bool ok = kbt_kubus_start(&kubus, tmp, data, y, NULL, NULL);
	free(y);
	return ok;
}

/* SIGTERM, as a user would; true when it exited cleanly. */
static bool stop(void)
{
	return kbt_kubus_stop(&kubus);
}

static void note_uid(const char *uid)
{
	for (int i = 0; i < nuids; i++)
		if (!strcmp(uids[i], uid))
			return;
	if (nuids < 8 && uid[0])
		snprintf(uids[nuids++], sizeof(uids[0]), "%s", uid);
}

static int group_setup(void **state)
{
	kbt_sweep_stale("klrunc");
	tmp = kbt_mkdtemp_owned("klrunc");
	if (tmp == NULL || asprintf(&data, "%s/data", tmp) < 0 ||
	    mkdir(data, 0700) != 0)
		return -1;
	snprintf(kc.home, sizeof(kc.home), "%s", tmp);
	snprintf(kc.kubeconfig, sizeof(kc.kubeconfig), "%s/admin.kubeconfig",
	    data);
	if (!kbt_busybox_rootfs(tmp) || !start(true))
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
	stop();
	char cmd[300];
	/* What a failed test may have left: runc containers (their shims go
	 * with them), pod netns, mounts under the tmp dir; the netns of the
	 * pods it saw, whether or not their directories are left. */
	kbt_pods_cleanup(tmp);
	for (int i = 0; i < nuids; i++) {
		char ns[128];
		kn_pod_netns(uids[i], ns, sizeof(ns));
		if (access(ns, F_OK) == 0) {
			snprintf(cmd, sizeof(cmd), "ip netns del %s",
			    strrchr(ns, '/') + 1);
			if (system(cmd) != 0)
				fprintf(stderr, "# cannot remove %s\n", ns);
		}
	}
	if (getenv("KUBUS_KEEP"))
		fprintf(stderr, "# kept %s\n", tmp);
	else
		kbt_rmrf(tmp);
	free(tmp);
	free(data);
	free(kubus.log);
	return 0;
}

static void apply(const char *name, const char *yaml)
{
	int st;
	free(kn_apply(&kc, tmp, name, yaml, &st));
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

static void wait_phase(const char *pod, const char *phase)
{
	char what[200], want[64];
	snprintf(what, sizeof(what), "pod %s", pod);
	snprintf(want, sizeof(want), "=%s", phase);
	char *out = get(what, "{.metadata.uid}");
	note_uid(out);
	free(out);
	bool ok;
	out = kn_wait(&kc, what, "{.status.phase}", want, WAIT_MS, &ok);
	free(out);
	if (!ok) {
		out = kn_kubectl(&kc, NULL, "get pod %s -o yaml", pod);
		fprintf(stderr, "# %s\n", out);
		free(out);
		char *l = kbt_slurp(kubus.log);
		fprintf(stderr, "# kubus log:\n%s\n", l);
		free(l);
	}
	assert_true(ok);
}

static char web_ip[64];

/* A shell command counting the cgroup dirs named after a pod uid. */
static const char *cgroup_find(const char *uid, char *cmd, size_t len)
{
	snprintf(cmd, len,
	    "find /sys/fs/cgroup -maxdepth 6 -type d -name '%s' 2>/dev/null | wc -l",
	    uid);
	return cmd;
}

static bool http_get(const char *ip, const char *want)
{
	char cmd[300], *o = NULL;
	snprintf(cmd, sizeof(cmd), "wget -T 2 -qO- http://%s:8080/index.html",
	    ip);
	bool ok = false;
	for (int i = 0; i < 50 && !ok; i++) {
		free(o);
		o = NULL;
		ok = kbt_run(cmd, &o) == 0 && strstr(o, want);
		if (!ok)
			kn_sleep_ms(100);
	}
	if (!ok)
		fprintf(stderr, "# wget %s: %s\n", ip, o);
	free(o);
	return ok;
}

static void test_httpd_pod(void **state)
{
	apply("web",
	    "apiVersion: v1\nkind: ConfigMap\n"
	    "metadata: {name: site, namespace: default}\n"
	    "data: {index.html: \"hello from a configMap\\n\"}\n"
	    "---\n"
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: web, namespace: default}\n"
	    "spec:\n"
	    "  terminationGracePeriodSeconds: 2\n"
	    "  containers:\n"
	    "  - name: httpd\n"
	    "    image: busybox\n"
	    "    command: [httpd, -f, -p, \"8080\", -h, /www]\n"
	    "    volumeMounts: [{name: site, mountPath: /www}]\n"
	    "  volumes: [{name: site, configMap: {name: site}}]\n");
	wait_phase("web", "Running");
	char *ip = get("pod web", "{.status.podIP}");
	snprintf(web_ip, sizeof(web_ip), "%s", ip);
	free(ip);
	printf("# web ip %s\n", web_ip);
	assert_int_equal(strncmp(web_ip, CIDR_PREFIX, strlen(CIDR_PREFIX)), 0);
	assert_true(http_get(web_ip, "hello from a configMap"));
	/* It has a cgroup (so the cleanup check below means something). */
	char cmd[600], *o = NULL, *uid = get("pod web", "{.metadata.uid}");
	kbt_run(cgroup_find(uid, cmd, sizeof(cmd)), &o);
	printf("# cgroup dirs of web: %s", o);
	assert_true(atoi(o) > 0);
	free(o);
	free(uid);
}

static void test_env_args_volumes(void **state)
{
	apply("show",
	    "apiVersion: v1\nkind: ConfigMap\n"
	    "metadata: {name: cfg, namespace: default}\n"
	    "data: {greeting: hi-there}\n"
	    "---\n"
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: show, namespace: default, labels: {tier: demo}}\n"
	    "spec:\n"
	    "  restartPolicy: Never\n"
	    "  initContainers:\n"
	    "  - name: prep\n"
	    "    image: busybox\n"
	    "    command: [sh, -c, \"echo made-by-init > /scratch/note\"]\n"
	    "    volumeMounts: [{name: scratch, mountPath: /scratch}]\n"
	    "  containers:\n"
	    "  - name: main\n"
	    "    image: busybox\n"
	    "    command: [sh, -c]\n"
	    "    args: ['echo \"ARGS $0 $1\"; env | sort; cat /etc/cfg/greeting; "
	    "echo; cat /scratch/note; cat /etc/resolv.conf; hostname', \"$(A)\", \"$(B)\"]\n"
	    "    env:\n"
	    "    - {name: A, value: alpha}\n"
	    "    - {name: B, value: \"$(A)-beta\"}\n"
	    "    - {name: MY_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n"
	    "    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n"
	    "    - {name: TIER, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['tier']\"}}}\n"
	    "    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}\n"
	    "    volumeMounts:\n"
	    "    - {name: cfg, mountPath: /etc/cfg}\n"
	    "    - {name: scratch, mountPath: /scratch}\n"
	    "  volumes:\n"
	    "  - {name: cfg, configMap: {name: cfg}}\n"
	    "  - {name: scratch, emptyDir: {}}\n");
	wait_phase("show", "Succeeded");
	char *ip = get("pod show", "{.status.podIP}");
	char *logs = kn_kubectl(&kc, NULL, "logs show");
	printf("# logs of show:\n%s", logs);
	expect_in(logs, "ARGS alpha alpha-beta");
	expect_in(logs, "A=alpha\n");
	expect_in(logs, "B=alpha-beta\n");
	expect_in(logs, "MY_NAME=show\n");
	char want[128];
	snprintf(want, sizeof(want), "MY_IP=%s\n", ip);
	expect_in(logs, want);
	expect_in(logs, "TIER=demo\n");
	expect_in(logs, "GREETING=hi-there\n");
	expect_in(logs, "hi-there\nmade-by-init\n");
	expect_in(logs, "nameserver 10.96.0.10\n");
	expect_in(logs,
	    "search default.svc.cluster.local svc.cluster.local cluster.local");
	expect_in(logs, "options ndots:5\n");
	free(logs);
	free(ip);
	/* Finished: its sandbox and network are released at once (the IP
	 * back to the pool), while the pod and its logs stay. */
	char *uid = get("pod show", "{.metadata.uid}"), ns[128];
	kn_pod_netns(uid, ns, sizeof(ns));
	for (int i = 0; i < 100 && access(ns, F_OK) == 0; i++)
		kn_sleep_ms(100);
	assert_int_not_equal(access(ns, F_OK), 0);
	free(uid);
	logs = kn_kubectl(&kc, NULL, "logs show -c main");
	expect_in(logs, "ARGS alpha alpha-beta");
	free(logs);
}

/* The host pid of web's container, from runc's own state. */
static int web_pid(void)
{
	char *id = get("pod web", "{.status.containerStatuses[0].containerID}");
	const char *bare = strstr(id, "://") ? strstr(id, "://") + 3 : id;
	char cmd[1200], *o = NULL;
	snprintf(cmd, sizeof(cmd),
	    "runc --root '%s' state '%s' | grep '\"pid\"' | tr -dc 0-9",
	    runc_root(), bare);
	kbt_run(cmd, &o);
	int pid = o ? atoi(o) : 0;
	printf("# web container %s pid %d\n", bare, pid);
	free(o);
	free(id);
	return pid;
}

static void test_restart_adopts(void **state)
{
	apply("gone",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: gone, namespace: default}\n"
	    "spec:\n"
	    "  terminationGracePeriodSeconds: 1\n"
	    "  containers: [{name: main, image: busybox, command: [sleep, \"3600\"]}]\n");
	wait_phase("gone", "Running");
	char *gone_uid = get("pod gone", "{.metadata.uid}");
	char gone_ns[128];
	kn_pod_netns(gone_uid, gone_ns, sizeof(gone_ns));
	assert_true(kn_is_netns(gone_ns));

	const char *jp =
	    "{.status.containerStatuses[0].containerID} "
	    "{.status.containerStatuses[0].state.running.startedAt} "
	    "{.status.containerStatuses[0].restartCount} "
	    "{.status.podIP} {.status.hostIP}";
	char *before = get("pod web", jp);
	printf("# before: %s\n", before);
	int pid_before = web_pid();
	assert_true(pid_before > 0);

	assert_true(stop());
	/* The kubelet stopped, the containers did not. */
	char cmd[800], *o = NULL;
	snprintf(cmd, sizeof(cmd), "runc --root '%s' list | grep -c running",
	    runc_root());
	kbt_run(cmd, &o);
	printf("# running after stop: %s", o);
	assert_int_equal(atoi(o), 2);
	free(o);
	assert_true(http_get(web_ip, "hello from a configMap"));

	/* Delete `gone` while no kubelet runs. */
	assert_true(start(false));
	o = kn_kubectl(&kc, NULL, "delete pod gone --grace-period=0 --force");
	free(o);
	assert_true(stop());

	assert_true(start(true));
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
	/* The very same process. */
	assert_int_equal(web_pid(), pid_before);
	free(before);
	free(after);
	assert_true(http_get(web_ip, "hello from a configMap"));

	for (int i = 0; i < WAIT_MS / 100 && access(gone_ns, F_OK) == 0; i++)
		kn_sleep_ms(100);
	assert_int_not_equal(access(gone_ns, F_OK), 0);
	snprintf(cmd, sizeof(cmd), "runc --root '%s' list | grep -c running",
	    runc_root());
	kbt_run(cmd, &o);
	assert_int_equal(atoi(o), 1);
	free(o);
	free(gone_uid);
}

static void test_cleanup(void **state)
{
	int st;
	char *o =
	    kn_kubectl(&kc, &st, "delete pod --all --wait=true --timeout=40s");
	printf("# %s", o);
	free(o);
	assert_int_equal(st, 0);
	o = kn_kubectl(&kc, NULL, "get pods -o name");
	assert_string_equal(o, "");
	free(o);
	for (int i = 0; i < nuids; i++) {
		char ns[128];
		kn_pod_netns(uids[i], ns, sizeof(ns));
		for (int w = 0; w < 50 && access(ns, F_OK) == 0; w++)
			kn_sleep_ms(100);
		if (access(ns, F_OK) == 0)
			fprintf(stderr, "# left: %s\n", ns);
		assert_int_not_equal(access(ns, F_OK), 0);
	}
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "runc --root '%s' list -q | wc -l",
	    runc_root());
	kbt_run(cmd, &o);
	assert_int_equal(atoi(o), 0);
	free(o);
	kbt_run("ip -o link show type veth | wc -l", &o);
	assert_int_equal(atoi(o), 0);
	free(o);
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/kubelet/" NODE "/cni/networks/kubus",
	    data);
	static const char *const except[] = { "lock", "last_reserved_ip.0",
		NULL };
	assert_int_equal(kn_dir_count(dir, except), 0);
	snprintf(cmd, sizeof(cmd), "grep -c ' %s/' /proc/self/mountinfo", tmp);
	kbt_run(cmd, &o);
	assert_int_equal(atoi(o), 0);
	free(o);
	/* No cgroup of any of the pods, v1 or v2. */
	for (int i = 0; i < nuids; i++) {
		kbt_run(cgroup_find(uids[i], cmd, sizeof(cmd)), &o);
		if (atoi(o))
			fprintf(stderr, "# cgroups left for %s\n", uids[i]);
		assert_int_equal(atoi(o), 0);
		free(o);
	}
	snprintf(dir, sizeof(dir), "%s/kubelet/" NODE "/pods", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
	/* And the host stops cleanly (no sanitizer report either). */
	assert_true(stop());
}

int main(void)
{
	const char *why = kn_missing_runc();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_httpd_pod),
		cmocka_unit_test(test_env_args_volumes),
		cmocka_unit_test(test_restart_adopts),
		cmocka_unit_test(test_cleanup),
	};
	return kn_main("kubelet_runc", "kbt-klr", why, netns_name, tests, group_setup,
	    group_teardown);
}
