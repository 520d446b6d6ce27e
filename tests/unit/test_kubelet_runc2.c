/* tests/unit/test_kubelet_runc2.c — the pod lifecycle with real containers:
 * `kubus run` (store-lmdb, apiserver, kubelet with runtime-runc and CNI) as
 * a child process inside a network namespace this test makes
 * (kbt-klr2-<pid>: lo only, no route out), driven with real kubectl:
 *   - the Node's kubeletVersion is the server's /version gitVersion and its
 *     containerRuntimeVersion is runc://<runc's version>;
 *   - `sh -c 'echo boom; exit 3'` goes to CrashLoopBackOff with restartCount
 *     growing at back-off intervals, lastState.terminated.exitCode 3, its
 *     output in `logs --previous`, BackOff in `describe`;
 *   - an exec readiness probe (`cat /tmp/ready`, through `runc exec`) keeps
 *     the running pod not Ready until its command makes the file;
 *   - an httpGet liveness probe against busybox httpd passes, then fails
 *     when the page goes: the container is killed and restarted;
 *   - `logs -f` gets the lines as the container prints them and ends with
 *     it; `logs --tail`;
 *   - `delete pod`: a container trapping TERM exits at once, one ignoring
 *     TERM is killed at terminationGracePeriodSeconds (timed);
 *   - an image not in the store: Never → ErrImageNeverPull, IfNotPresent and
 *     Always → ErrImagePull/ImagePullBackOff; once imported, the pod runs;
 *   - after deleting everything: no runc container, netns, veth or mount.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "kubelet_netns.h"

#define NODE "klr2-node"
#define WAIT_MS 30000
#define MISSING "registry.invalid/kbt/missing:1"

static char netns_name[KN_NETNS_LEN];
static char *tmp, *data;
static struct kbt_kubus kubus;
static struct kn_kubectl kc;
static char uids[16][64];
static int nuids;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
		"plugins:\n"
		"  - name: store\n"
		"    use: store-lmdb\n"
		"    config: {path: store-lmdb, sync: false}\n"
		"  - name: apiserver\n"
		"    use: apiserver\n"
		"    config: {listen: \"127.0.0.1:0\"}\n"
		"  - name: kubelet\n"
		"    use: kubelet\n"
		"    config:\n"
		"      runtime: runtime-runc\n"
		"      runtime_config: %s\n"
		"      pod_cidr: 10.244.11.0/24\n"
		"      bridge: kbtr2\n"
		"      cluster_dns: 10.96.0.10\n"
		"      sync_period: 500ms\n"
		"      backoff_initial: 1s\n"
		"      backoff_max: 4s\n",
		rtc) < 0)
		return NULL;
	return y;
}

static bool start(void)
{
	char *y = config();
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
	if (nuids < 16 && uid[0])
		snprintf(uids[nuids++], sizeof(uids[0]), "%s", uid);
}

/* What a failed run may have left: runc containers (their shims go with
 * them), pod netns, mounts under the tmp dir; the netns of the pods it
 * saw, whether or not their directories are left. */
static void sweep(void)
{
	char cmd[300];
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
}

static int group_setup(void **state)
{
	(void)state;
	kbt_sweep_stale("klrunc2");
	tmp = kbt_mkdtemp_owned("klrunc2");
	if (tmp == NULL || asprintf(&data, "%s/data", tmp) < 0 ||
	    mkdir(data, 0700) != 0)
		return -1;
	snprintf(kc.home, sizeof(kc.home), "%s", tmp);
	snprintf(kc.kubeconfig, sizeof(kc.kubeconfig), "%s/admin.kubeconfig",
	    data);
	if (!kbt_busybox_rootfs(tmp) || !start())
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
	(void)state;
	stop();
	sweep();
	if (getenv("KUBUS_KEEP"))
		fprintf(stderr, "# kept %s\n", tmp);
	else
		kbt_rmrf(tmp);
	free(tmp);
	free(data);
	free(kubus.log);
	return 0;
}

/* --- helpers --------------------------------------------------------------- */

static void apply(const char *name, const char *yaml)
{
	int st;
	free(kn_apply(&kc, tmp, name, yaml, &st));
	assert_int_equal(st, 0);
	/* Remember every pod's uid for the cleanup checks. */
	char *out = kn_kubectl(&kc, NULL,
	    "get pods -o jsonpath='{range .items[*]}{.metadata.uid}{\"\\n\"}{end}'");
	for (char *sv = NULL, *u = strtok_r(out, "\n", &sv); u;
	     u = strtok_r(NULL, "\n", &sv))
		note_uid(u);
	free(out);
}

static char *get(const char *pod, const char *jp)
{
	return kn_kubectl(&kc, NULL, "get pod %s -o jsonpath='%s'", pod, jp);
}

static void expect_in(const char *hay, const char *needle)
{
	if (hay == NULL || strstr(hay, needle) == NULL)
		fprintf(stderr, "# expected \"%s\" in:\n%s\n", needle,
		    hay ? hay : "(null)");
	assert_non_null(hay);
	assert_non_null(strstr(hay, needle));
}

static void dump(const char *pod)
{
	char *out = kn_kubectl(&kc, NULL, "get pod %s -o yaml", pod);
	fprintf(stderr, "# %s\n", out);
	free(out);
	char *l = kbt_slurp(kubus.log);
	fprintf(stderr, "# kubus log:\n%s\n", l);
	free(l);
}

static void wait_for(const char *pod, const char *jp, const char *want)
{
	char what[200];
	snprintf(what, sizeof(what), "pod %s", pod);
	bool ok;
	char *out = kn_wait(&kc, what, jp, want, WAIT_MS, &ok);
	free(out);
	if (!ok)
		dump(pod);
	assert_true(ok);
}

static void wait_phase(const char *pod, const char *phase)
{
	char want[64];
	snprintf(want, sizeof(want), "=%s", phase);
	wait_for(pod, "{.status.phase}", want);
}

/* `kubectl <args>` in the background, its output into path. */
static pid_t kubectl_bg(const char *path, const char *args)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	    "exec env HOME='%s' KUBECONFIG='%s' kubectl %s", kc.home,
	    kc.kubeconfig, args);
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	return kbt_spawn(argv, path);
}

static void delete_pod(const char *pod)
{
	int st;
	char *o = kn_kubectl(&kc, &st,
	    "delete pod %s --grace-period=1 --wait=true --timeout=30s", pod);
	if (st)
		fprintf(stderr, "# delete %s: %s\n", pod, o);
	free(o);
	assert_int_equal(st, 0);
}

/* --- tests ---------------------------------------------------------------- */

static void test_node_versions(void **state)
{
	(void)state;
	char *v = kn_kubectl(&kc, NULL, "get --raw /version");
	const char *g = strstr(v, "\"gitVersion\"");
	assert_non_null(g);
	g = strchr(g + strlen("\"gitVersion\""), '"');
	assert_non_null(g);
	char git[64];
	snprintf(git, sizeof(git), "%.*s", (int)strcspn(g + 1, "\""), g + 1);
	char *kv = kn_kubectl(&kc, NULL,
	    "get node " NODE
	    " -o jsonpath='{.status.nodeInfo.kubeletVersion}'");
	printf("# server %s, kubelet %s\n", git, kv);
	assert_true(git[0] == 'v');
	assert_string_equal(kv, git);
	free(kv);
	free(v);

	/* runc://<the version `runc --version` prints first> */
	char *rv = NULL;
	assert_int_equal(kbt_run("runc --version | head -n1", &rv), 0);
	const char *num = strstr(rv, "version ");
	assert_non_null(num);
	char want[128];
	snprintf(want, sizeof(want), "runc://%.*s", (int)strcspn(num + 8, "\n"),
	    num + 8);
	char *crv = kn_kubectl(&kc, NULL,
	    "get node " NODE
	    " -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}'");
	printf("# containerRuntimeVersion %s\n", crv);
	assert_string_equal(crv, want);
	free(crv);
	free(rv);
}

static void test_crashloop(void **state)
{
	(void)state;
	apply("crash",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: crash, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  terminationGracePeriodSeconds: 1\n"
	    "  containers:\n"
	    "  - {name: main, image: busybox, imagePullPolicy: IfNotPresent,\n"
	    "     command: [sh, -c, 'echo boom; exit 3']}\n");
	const char *jp =
	    "{.status.containerStatuses[0].restartCount} "
	    "{.status.containerStatuses[0].state.waiting.reason} "
	    "{.status.containerStatuses[0].lastState.terminated.exitCode}";
	/* When each restartCount was first seen, and whether the pod was
	 * seen waiting in CrashLoopBackOff. */
	int64_t t0 = now_ms(), seen_at[8] = { 0 };
	int last = 0;
	bool backoff = false, decreased = false;
	char *o = NULL;
	while (now_ms() - t0 < 40000 && last < 3) {
		free(o);
		o = get("crash", jp);
		int rc = atoi(o);
		if (rc < last)
			decreased = true;
		for (int i = last + 1; i <= rc && i < 8; i++)
			seen_at[i] = now_ms();
		if (rc > last)
			last = rc;
		backoff |= strstr(o, "CrashLoopBackOff") != NULL;
		kn_sleep_ms(100);
	}
	printf("# crash: last \"%s\"; restart 1 at %lld ms, 2 at %lld, 3 at %lld\n",
	    o, (long long)(seen_at[1] - t0), (long long)(seen_at[2] - t0),
	    (long long)(seen_at[3] - t0));
	if (last < 3 || !backoff)
		dump("crash");
	assert_false(decreased);
	assert_true(last >= 3);
	assert_true(backoff);
	/* Back-off 1 s before the second restart, 2 s before the third
	 * (each seen up to a poll late: some slack). */
	assert_true(seen_at[2] - seen_at[1] >= 500);
	assert_true(seen_at[3] - seen_at[1] >= 2400);
	free(o);

	o = get("crash",
	    "{.status.containerStatuses[0].lastState.terminated.exitCode}/"
	    "{.status.containerStatuses[0].lastState.terminated.reason}");
	assert_string_equal(o, "3/Error");
	free(o);
	wait_for("crash", "{.status.containerStatuses[0].state.waiting.reason}",
	    "=CrashLoopBackOff");
	o = get("crash",
	    "{.status.containerStatuses[0].state.waiting.message}");
	/* 1 s, 2 s, then 4 s: doubled up to backoff_max. */
	expect_in(o,
	    "back-off 4s restarting failed container=main pod=crash_default(");
	free(o);
	o = kn_kubectl(&kc, NULL, "logs crash --previous");
	assert_string_equal(o, "boom\n");
	free(o);
	o = kn_kubectl(&kc, NULL, "describe pod crash");
	printf("# describe crash:\n%s", o);
	expect_in(o, "CrashLoopBackOff");
	expect_in(o, "Exit Code:    3");
	expect_in(o, "Pulled");
	expect_in(o, "already present on machine");
	expect_in(o, "Created");
	expect_in(o, "Started");
	expect_in(o, "BackOff");
	expect_in(o, "Back-off restarting failed container main");
	free(o);
	delete_pod("crash");
}

static void test_readiness_exec(void **state)
{
	(void)state;
	int64_t t0 = now_ms();
	apply("slow",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: slow, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  terminationGracePeriodSeconds: 1\n"
	    "  containers:\n"
	    "  - name: main\n"
	    "    image: busybox\n"
	    "    command: [sh, -c, 'sleep 6; touch /tmp/ready; exec sleep 3600']\n"
	    "    readinessProbe:\n"
	    "      exec: {command: [cat, /tmp/ready]}\n"
	    "      periodSeconds: 1\n"
	    "      failureThreshold: 1\n");
	wait_phase("slow", "Running");
	const char *jp =
	    "{.status.phase} "
	    "{.status.conditions[?(@.type==\"Ready\")].status} "
	    "{.status.conditions[?(@.type==\"ContainersReady\")].status} "
	    "{.status.containerStatuses[0].ready}";
	int not_ready = 0;
	int64_t ready_at = 0;
	char *o = NULL;
	while (now_ms() - t0 < 40000) {
		free(o);
		o = get("slow", jp);
		if (!strcmp(o, "Running False False false"))
			not_ready++;
		else if (!strcmp(o, "Running True True true")) {
			ready_at = now_ms();
			break;
		} else if (strncmp(o, "Running ", 8)) {
			break;
		}
		kn_sleep_ms(200);
	}
	printf("# slow: not ready %d times, ready after %lld ms (\"%s\")\n",
	    not_ready, (long long)(ready_at - t0), o);
	if (ready_at == 0)
		dump("slow");
	free(o);
	/* Running but not Ready while the file is missing: many polls. */
	assert_true(not_ready >= 3);
	assert_true(ready_at > 0);
	/* The file comes 6 s after the container started, never before. */
	assert_true(ready_at - t0 >= 5500);
	o = kn_kubectl(&kc, NULL, "describe pod slow");
	expect_in(o, "Unhealthy");
	expect_in(o, "Readiness probe failed");
	expect_in(o, "/tmp/ready");
	free(o);
	o = get("slow", "{.status.containerStatuses[0].restartCount}");
	assert_string_equal(o, "0");
	free(o);
	delete_pod("slow");
}

static void test_liveness_http(void **state)
{
	(void)state;
	apply("live",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: live, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  terminationGracePeriodSeconds: 1\n"
	    "  containers:\n"
	    "  - name: web\n"
	    "    image: busybox\n"
	    "    command: [sh, -c, 'mkdir -p /srv; echo ok > /srv/healthz;"
	    " (sleep 7; rm /srv/healthz) & exec httpd -f -p 8080 -h /srv']\n"
	    "    ports: [{name: http, containerPort: 8080}]\n"
	    "    livenessProbe:\n"
	    "      httpGet: {path: /healthz, port: http}\n"
	    "      periodSeconds: 1\n"
	    "      failureThreshold: 2\n"
	    "    readinessProbe:\n"
	    "      httpGet: {path: /healthz, port: 8080}\n"
	    "      periodSeconds: 1\n");
	wait_phase("live", "Running");
	int64_t t0 = now_ms();
	/* The page is there: Ready by httpGet, and not restarted. */
	wait_for("live", "{.status.containerStatuses[0].ready}", "=true");
	char *o = get("live", "{.status.containerStatuses[0].restartCount}");
	assert_string_equal(o, "0");
	free(o);
	/* The page goes after 7 s: 2 failures, then killed and restarted. */
	int64_t restarted = 0;
	while (now_ms() - t0 < 40000) {
		o = get("live", "{.status.containerStatuses[0].restartCount}");
		int n = atoi(o);
		free(o);
		if (n >= 1) {
			restarted = now_ms();
			break;
		}
		kn_sleep_ms(250);
	}
	printf("# live restarted %lld ms after Running\n",
	    (long long)(restarted - t0));
	if (restarted == 0)
		dump("live");
	assert_true(restarted > 0);
	assert_true(restarted - t0 >= 5000);
	o = kn_kubectl(&kc, NULL, "describe pod live");
	printf("# describe live:\n%s", o);
	expect_in(o,
	    "Liveness probe failed: HTTP probe failed with statuscode: 404");
	expect_in(o, "Container web failed liveness probe, will be restarted");
	expect_in(o, "Killing");
	free(o);
	/* It serves again: ready again in its new attempt. */
	wait_for("live",
	    "{.status.containerStatuses[0].restartCount}/"
	    "{.status.containerStatuses[0].ready}",
	    "1/true");
	delete_pod("live");
}

static void test_logs_follow(void **state)
{
	(void)state;
	apply("ticker",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: ticker, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  restartPolicy: Never\n"
	    "  containers:\n"
	    "  - name: main\n"
	    "    image: busybox\n"
	    "    command: [sh, -c, 'for i in 1 2 3 4 5 6 7 8; do echo tick-$i;"
	    " sleep 1; done']\n");
	wait_phase("ticker", "Running");
	/* It runs in its own network namespace, the kubelet's. */
	char *uid = get("ticker", "{.metadata.uid}"), ns[128];
	kn_pod_netns(uid, ns, sizeof(ns));
	free(uid);
	assert_true(kn_is_netns(ns));
	char path[600];
	snprintf(path, sizeof(path), "%s/follow.out", tmp);
	pid_t f = kubectl_bg(path, "logs -f ticker");
	assert_true(f > 0);
	/* When each line first shows up in the follower's output. */
	int64_t seen[9] = { 0 };
	int64_t t0 = now_ms();
	int st = -1;
	while (now_ms() - t0 < 30000) {
		char *o = kbt_slurp(path);
		for (int i = 1; i <= 8 && o; i++) {
			char l[32];
			snprintf(l, sizeof(l), "tick-%d\n", i);
			if (!seen[i] && strstr(o, l))
				seen[i] = now_ms();
		}
		free(o);
		if ((st = kbt_wait_pid(f, 0)) >= 0)
			break;
		kn_sleep_ms(100);
	}
	if (st < 0)
		kbt_kill(f);
	char *o = kbt_slurp(path);
	printf("# logs -f (exit %d):\n%s", st, o);
	int first = 1;
	while (first <= 8 && seen[first] == 0)
		first++;
	printf("# first line seen tick-%d, tick-8 %lld ms later\n", first,
	    (long long)(seen[8] - seen[first]));
	/* It ended by itself with the container, with every line in order. */
	assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_string_equal(o,
	    "tick-1\ntick-2\ntick-3\ntick-4\ntick-5\ntick-6\ntick-7\ntick-8\n");
	free(o);
	/* Streamed: the lines came over seconds, not at once at the end. */
	assert_true(first <= 5);
	assert_true(seen[8] - seen[first] >= 2000);
	for (int i = first + 1; i <= 8; i++)
		assert_true(seen[i] >= seen[i - 1]);
	wait_phase("ticker", "Succeeded");
	o = kn_kubectl(&kc, NULL, "logs ticker --tail=2");
	assert_string_equal(o, "tick-7\ntick-8\n");
	free(o);
	o = kn_kubectl(&kc, NULL, "logs ticker -c main --tail=1");
	assert_string_equal(o, "tick-8\n");
	free(o);
	int rc;
	o = kn_kubectl(&kc, &rc, "logs ticker -c nosuch");
	assert_int_not_equal(rc, 0);
	free(o);
	delete_pod("ticker");
}

/* Seconds `kubectl delete pod NAME` (waiting for the object to go) took. */
static double timed_delete(const char *pod)
{
	int64_t t = now_ms();
	int st;
	char *o = kn_kubectl(&kc, &st,
	    "delete pod %s --wait=true --timeout=40s", pod);
	double s = (double)(now_ms() - t) / 1000.0;
	printf("# delete %s: %.2f s: %s", pod, s, o);
	free(o);
	assert_int_equal(st, 0);
	return s;
}

static void test_delete_grace(void **state)
{
	(void)state;
	apply("trapper",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: trapper, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  terminationGracePeriodSeconds: 20\n"
	    "  containers:\n"
	    "  - name: main\n"
	    "    image: busybox\n"
	    "    command: [sh, -c, 'trap \"echo got-term; exit 0\" TERM;"
	    " echo armed; while :; do sleep 1 & wait $!; done']\n"
	    "---\n"
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: ignorer, namespace: default}\n"
	    "spec:\n"
	    "  nodeName: " NODE "\n"
	    "  terminationGracePeriodSeconds: 3\n"
	    "  containers:\n"
	    "  - name: main\n"
	    "    image: busybox\n"
	    "    command: [sh, -c, 'trap \"\" TERM; echo armed;"
	    " while :; do sleep 1; done']\n");
	wait_phase("trapper", "Running");
	wait_phase("ignorer", "Running");
	char *o;
	/* Both have their traps set. */
	for (int i = 0; i < 2; i++) {
		const char *pod = i ? "ignorer" : "trapper";
		bool armed = false;
		for (int w = 0; w < 100 && !armed; w++) {
			o = kn_kubectl(&kc, NULL, "logs %s", pod);
			armed = strstr(o, "armed\n") != NULL;
			free(o);
			if (!armed)
				kn_sleep_ms(100);
		}
		assert_true(armed);
	}
	/* The trapping one: its handler runs and it exits long before the
	 * 20 s; `logs -f` sees what the handler printed. */
	char path[600];
	snprintf(path, sizeof(path), "%s/trapper.out", tmp);
	pid_t f = kubectl_bg(path, "logs -f trapper");
	assert_true(f > 0);
	char *l = kbt_wait_file(path, "armed\n", 10000);
	assert_non_null(l);
	free(l);
	double s = timed_delete("trapper");
	assert_true(s < 8.0);
	l = kbt_wait_file(path, "got-term\n", 5000);
	if (l == NULL) {
		o = kbt_slurp(path);
		fprintf(stderr, "# logs -f trapper:\n%s\n", o);
		free(o);
	}
	assert_non_null(l);
	free(l);
	int st = kbt_wait_pid(f, 5000);
	if (st < 0)
		kbt_kill(f);

	/* The one ignoring TERM: SIGKILLed when its 3 s are up. */
	s = timed_delete("ignorer");
	assert_true(s >= 2.8);
	assert_true(s < 9.0);
	/* Its events outlive it. */
	o = kn_kubectl(&kc, NULL,
	    "get events --field-selector involvedObject.name=ignorer "
	    "-o jsonpath='{range .items[*]}{.reason}: {.message}{\"\\n\"}{end}'");
	printf("# events of ignorer:\n%s", o);
	expect_in(o, "Killing: Stopping container main");
	expect_in(o, "Started: Started container main");
	free(o);
}

static void test_image_missing(void **state)
{
	(void)state;
	static const char *const pol[] = { "Never", "IfNotPresent", "Always" };
	char yaml[4096];
	size_t n = 0;
	for (int i = 0; i < 3; i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
		    "%sapiVersion: v1\nkind: Pod\n"
		    "metadata: {name: pull-%c, namespace: default}\n"
		    "spec:\n"
		    "  nodeName: " NODE "\n"
		    "  terminationGracePeriodSeconds: 1\n"
		    "  containers:\n"
		    "  - {name: main, image: \"" MISSING "\",\n"
		    "     imagePullPolicy: %s, command: [sleep, \"3600\"]}\n",
		    i ? "---\n" : "", "nia"[i], pol[i]);
	apply("pulls", yaml);
	const char *jp = "{.status.containerStatuses[0].state.waiting.reason}";
	wait_for("pull-n", jp, "=ErrImageNeverPull");
	wait_for("pull-i", jp, "=ImagePullBackOff");
	wait_for("pull-a", jp, "=ImagePullBackOff");
	char *o = get("pull-n",
	    "{.status.phase}: {.status.containerStatuses[0].state.waiting.message}");
	assert_string_equal(o,
	    "Pending: Container image \"" MISSING
	    "\" is not present with pull policy of Never");
	free(o);
	/* The reason and its message from one read: once the back-off ends
	 * the kubelet pulls again and says ErrImagePull with the pull's own
	 * error until the next back-off (CI's ASan run read the message of
	 * such a retry right after waiting for the reason). */
	wait_for("pull-i",
	    "{.status.phase} {.status.containerStatuses[0].state.waiting.reason}"
	    ": {.status.containerStatuses[0].state.waiting.message}",
	    "=Pending ImagePullBackOff: Back-off pulling image \"" MISSING "\"");
	o = kn_kubectl(&kc, NULL, "describe pod pull-a");
	printf("# describe pull-a:\n%s", o);
	expect_in(o, "Pulling image \"" MISSING "\"");
	expect_in(o, "Failed to pull image \"" MISSING "\"");
	expect_in(o, "Error: ErrImagePull");
	expect_in(o, "Back-off pulling image \"" MISSING "\"");
	expect_in(o, "Error: ImagePullBackOff");
	free(o);
	o = kn_kubectl(&kc, NULL, "describe pod pull-n");
	expect_in(o, "ErrImageNeverPull");
	free(o);
	/* Nothing was pulled: the store still lacks it; the host is alive. */
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "'%s/kubus' image ls --data-dir '%s'",
	    kbt_build_dir(), data);
	assert_int_equal(kbt_run(cmd, &o), 0);
	printf("# images:\n%s", o);
	assert_null(strstr(o, "missing"));
	free(o);
	assert_int_equal(kill(kubus.pid, 0), 0);

	/* Once it is in the store (imported as that name), the IfNotPresent
	 * pod starts at its next try; Never is retried as well. */
	char img[1024];
	snprintf(img, sizeof(img), "%s/images/busybox.tar", kbt_build_dir());
	if (access(img, R_OK) == 0) {
		snprintf(cmd, sizeof(cmd),
		    "'%s/kubus' image import '%s' --as '" MISSING
		    "' --data-dir '%s'",
		    kbt_build_dir(), img, data);
		assert_int_equal(kbt_run(cmd, &o), 0);
		free(o);
		wait_phase("pull-i", "Running");
		wait_phase("pull-n", "Running");
		o = kn_kubectl(&kc, NULL, "describe pod pull-i");
		expect_in(o, "Started");
		free(o);
	} else {
		printf("# no %s: the import part is not run\n", img);
	}
	int st;
	o = kn_kubectl(&kc, &st,
	    "delete pod pull-n pull-i pull-a --grace-period=1 --wait=true "
	    "--timeout=30s");
	free(o);
	assert_int_equal(st, 0);
}

static void test_cleanup(void **state)
{
	(void)state;
	int st;
	char *o =
	    kn_kubectl(&kc, &st, "delete pod --all --wait=true --timeout=40s");
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
	snprintf(cmd, sizeof(cmd), "grep -c ' %s/' /proc/self/mountinfo", tmp);
	kbt_run(cmd, &o);
	assert_int_equal(atoi(o), 0);
	free(o);
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/kubelet/" NODE "/pods", data);
	assert_int_equal(kn_dir_count(dir, NULL), 0);
	/* No stray runc exec left by the probes. */
	snprintf(cmd, sizeof(cmd), "pgrep -f '[r]unc --root %s' | wc -l",
	    runc_root());
	kbt_run(cmd, &o);
	assert_int_equal(atoi(o), 0);
	free(o);
	assert_true(stop());
}

int main(void)
{
	const char *why = kn_missing_runc();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_versions),
		cmocka_unit_test(test_crashloop),
		cmocka_unit_test(test_readiness_exec),
		cmocka_unit_test(test_liveness_http),
		cmocka_unit_test(test_logs_follow),
		cmocka_unit_test(test_delete_grace),
		cmocka_unit_test(test_image_missing),
		cmocka_unit_test(test_cleanup),
	};
	return kn_main("kubelet_runc2", "kbt-klr2", why, netns_name, tests, group_setup,
	    group_teardown);
}
