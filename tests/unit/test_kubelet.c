/* tests/unit/test_kubelet.c — the kubelet with runtime-fake on a real host
 * (store-lmdb + apiserver): Node and Lease, a pod to Running and Ready,
 * restart policies with CrashLoopBackOff, logs over the bus, graceful
 * deletion. Everything through the `api` service, as kubectl would see it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define NODE "node-1"
#define WAIT_MS 15000

struct env {
	struct kbt_host *h;
	kb_ctx *c;
};

static int setup(void **state)
{
	static const char yaml[] =
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
	    "      node_name: " NODE "\n"
	    "      runtime: runtime-fake\n"
	    "      runtime_config:\n"
	    "        images:\n"
	    "          chatty: {log: \"hello from chatty\\nsecond line\"}\n"
	    "      lease_interval: 300ms\n"
	    "      sync_period: 100ms\n"
	    "      backoff_initial: 300ms\n"
	    "      backoff_max: 1s\n"
	    "      cpu: \"4\"\n"
	    "      memory: 8Gi\n";
	char err[1024];
	struct env *e = calloc(1, sizeof(*e));
	e->h = kbt_host_start(yaml, err, sizeof(err));
	if (e->h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		free(e);
		return -1;
	}
	const char *groups[] = { "kubus:plugins" };
	e->c = kbt_client(e->h, "tester", "plugin:tester", groups, 1);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	kbt_host_stop(e->h);
	free(e);
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Poll get until check(obj) holds; the last object seen is left in *last
 * (the caller frees it) for the failure message. */
typedef bool (*check_fn)(const msgpack_object *o, void *arg);

static kb_msg *wait_for(kb_ctx *c, const struct kb_gvr *r, const char *ns,
    const char *name, check_fn check, void *arg)
{
	for (int waited = 0; waited < WAIT_MS; waited += 50) {
		kb_msg *rep = NULL;
		if (kb_api_get(c, r, ns, name, &rep) == 0 &&
		    check(kb_msg_body(rep), arg))
			return rep;
		if (waited + 50 >= WAIT_MS && rep) {
			char buf[4096];
			fprintf(stderr, "last seen: %s\n",
			    kb_mp_repr(kb_msg_body(rep), buf, sizeof(buf)));
		}
		kb_msg_free(rep);
		sleep_ms(50);
	}
	return NULL;
}

static void create_pod(kb_ctx *c, const char *name, const char *image,
    const char *policy, const char *init_image)
{
	kb_body *b;
	if (init_image)
		b = kb_mp_body(
		    "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:i, s:[{s:s, s:s}], s:[{s:s, s:s}]}}",
		    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
		    "namespace", "default", "spec", "nodeName", NODE,
		    "restartPolicy", policy, "terminationGracePeriodSeconds", 1,
		    "initContainers", "name", "setup", "image", init_image,
		    "containers", "name", "main", "image", image);
	else
		b = kb_mp_body(
		    "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:i, s:[{s:s, s:s}]}}",
		    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
		    "namespace", "default", "spec", "nodeName", NODE,
		    "restartPolicy", policy, "terminationGracePeriodSeconds", 1,
		    "containers", "name", "main", "image", image);
	kb_msg *rep = NULL;
	int rc = kb_api_create(c, &KB_GVR_PODS, "default", b, &rep);
	if (rc) {
		const char *m = "";
		if (rep)
			kb_msg_err(rep, &m);
		fprintf(stderr, "create %s: %s: %s\n", name, kb_strerror(rc),
		    m);
	}
	kb_msg_free(rep);
	assert_int_equal(rc, 0);
}

/* --- the node ------------------------------------------------------------ */

static bool node_ready(const msgpack_object *o, void *arg)
{
	return kbt_cond_true(o, "Ready");
}

static bool lease_renewed(const msgpack_object *o, void *arg)
{
	const char *t;
	size_t n;
	if (!kb_mp_str(o, "spec.renewTime", &t, &n))
		return false;
	char **first = arg;
	if (*first == NULL) {
		*first = strndup(t, n);
		return false;
	}
	return strlen(*first) != n || memcmp(*first, t, n) != 0;
}

static void test_node_ready_with_lease(void **state)
{
	struct env *e = *state;
	kb_msg *node =
	    wait_for(e->c, &KB_GVR_NODES, NULL, NODE, node_ready, NULL);
	assert_non_null(node);
	const msgpack_object *o = kb_msg_body(node);
	assert_true(kb_mp_streq(o, "status.capacity.cpu", "4"));
	/* 8Gi as the kubelet writes it (Ki), or as the server canonicalises it. */
	assert_true(kb_mp_streq(o, "status.capacity.memory", "8388608Ki") ||
	    kb_mp_streq(o, "status.capacity.memory", "8Gi"));
	assert_true(kb_mp_streq(o, "status.allocatable.pods", "110"));
	assert_true(kb_mp_streq(o, "status.addresses[1].address", NODE));
	assert_true(kb_mp_streq(o, "status.nodeInfo.containerRuntimeVersion",
	    "fake://0.1.0"));
	assert_true(
	    kb_mp_streq(o, "metadata.labels.kubernetes\\.io/hostname", NODE));
	kb_msg_free(node);

	char *first = NULL;
	kb_msg *lease = wait_for(e->c, &KB_GVR_LEASES, "kube-node-lease", NODE,
	    lease_renewed, &first);
	free(first);
	assert_non_null(lease);
	o = kb_msg_body(lease);
	assert_true(kb_mp_streq(o, "spec.holderIdentity", NODE));
	assert_true(kb_mp_streq(o, "metadata.ownerReferences[0].kind", "Node"));
	int64_t secs = 0;
	assert_true(kb_mp_int(o, "spec.leaseDurationSeconds", &secs));
	assert_int_equal(secs, 40);
	kb_msg_free(lease);
}

/* --- a pod to Running ------------------------------------------------------------ */

static bool pod_ready(const msgpack_object *o, void *arg)
{
	return kb_mp_streq(o, "status.phase", "Running") &&
	    kbt_cond_true(o, "Ready") &&
	    kbt_cond_true(o, "ContainersReady") &&
	    kbt_cond_true(o, "Initialized") &&
	    kbt_cond_true(o, "PodScheduled");
}

static void test_pod_runs_and_is_ready(void **state)
{
	struct env *e = *state;
	create_pod(e->c, "web", "nginx:1.25", "Always", "complete");
	kb_msg *rep =
	    wait_for(e->c, &KB_GVR_PODS, "default", "web", pod_ready, NULL);
	assert_non_null(rep);
	const msgpack_object *o = kb_msg_body(rep);
	const char *ip;
	size_t n;
	assert_true(kb_mp_str(o, "status.podIP", &ip, &n));
	assert_true(n > 5 && !memcmp(ip, "10.88.", 6));
	assert_non_null(kb_mp_get(o, "status.startTime"));
	assert_non_null(kb_mp_get(o, "status.hostIP"));
	assert_true(kb_mp_streq(o, "status.containerStatuses[0].name", "main"));
	assert_non_null(kb_mp_get(o,
	    "status.containerStatuses[0].state.running.startedAt"));
	bool ready = false;
	assert_true(
	    kb_mp_bool(o, "status.containerStatuses[0].ready", &ready) &&
	    ready);
	assert_int_equal(kb_mp_get(o, "status.containerStatuses[0].containerID")
			     ->type,
	    MSGPACK_OBJECT_STR);
	int64_t code = -1;
	assert_true(kb_mp_int(o,
	    "status.initContainerStatuses[0].state.terminated.exitCode",
	    &code));
	assert_int_equal(code, 0);
	assert_true(kb_mp_streq(o,
	    "status.initContainerStatuses[0].state.terminated.reason",
	    "Completed"));
	kb_msg_free(rep);
}

/* --- restart policies ------------------------------------------------------------ */

static bool crash_looping(const msgpack_object *o, void *arg)
{
	int64_t restarts = 0, code = -1;
	kb_mp_int(o, "status.containerStatuses[0].restartCount", &restarts);
	kb_mp_int(o,
	    "status.containerStatuses[0].lastState.terminated.exitCode", &code);
	return restarts >= 2 && code == 1 &&
	    kb_mp_streq(o, "status.containerStatuses[0].state.waiting.reason",
		"CrashLoopBackOff") &&
	    kb_mp_streq(o, "status.phase", "Running") &&
	    !kbt_cond_true(o, "Ready");
}

static bool phase_is(const msgpack_object *o, void *arg)
{
	return kb_mp_streq(o, "status.phase", arg);
}

static void test_crash_loop_backoff(void **state)
{
	struct env *e = *state;
	create_pod(e->c, "crash", "fail", "Always", NULL);
	kb_msg *rep = wait_for(e->c, &KB_GVR_PODS, "default", "crash",
	    crash_looping, NULL);
	assert_non_null(rep);
	const char *msg;
	size_t n;
	assert_true(kb_mp_str(kb_msg_body(rep),
	    "status.containerStatuses[0].state.waiting.message", &msg, &n));
	assert_non_null(memmem(msg, n, "back-off", 8));
	kb_msg_free(rep);
}

static void test_restart_policies(void **state)
{
	struct env *e = *state;
	create_pod(e->c, "once-fail", "fail", "Never", NULL);
	create_pod(e->c, "once-ok", "complete", "OnFailure", NULL);
	create_pod(e->c, "init-fail", "nginx", "Never", "fail");
	kb_msg *rep = wait_for(e->c, &KB_GVR_PODS, "default", "once-fail",
	    phase_is, "Failed");
	assert_non_null(rep);
	int64_t code = -1, restarts = -1;
	assert_true(kb_mp_int(kb_msg_body(rep),
	    "status.containerStatuses[0].state.terminated.exitCode", &code));
	assert_int_equal(code, 1);
	assert_true(kb_mp_int(kb_msg_body(rep),
	    "status.containerStatuses[0].restartCount", &restarts));
	assert_int_equal(restarts, 0);
	kb_msg_free(rep);
	rep = wait_for(e->c, &KB_GVR_PODS, "default", "once-ok", phase_is,
	    "Succeeded");
	assert_non_null(rep);
	kb_msg_free(rep);
	rep = wait_for(e->c, &KB_GVR_PODS, "default", "init-fail", phase_is,
	    "Failed");
	assert_non_null(rep);
	assert_true(kb_mp_streq(kb_msg_body(rep),
	    "status.containerStatuses[0].state.waiting.reason",
	    "PodInitializing"));
	kb_msg_free(rep);
}

static bool missing_image(const msgpack_object *o, void *arg)
{
	const char *r = "status.containerStatuses[0].state.waiting.reason";
	return (kb_mp_streq(o, r, "ErrImagePull") ||
		   kb_mp_streq(o, r, "ImagePullBackOff")) &&
	    kb_mp_streq(o, "status.phase", "Pending");
}

static void test_missing_image_waits(void **state)
{
	struct env *e = *state;
	create_pod(e->c, "noimage", "missing:1", "Always", NULL);
	kb_msg *rep = wait_for(e->c, &KB_GVR_PODS, "default", "noimage",
	    missing_image, NULL);
	assert_non_null(rep);
	kb_msg_free(rep);
}

/* --- logs ------------------------------------------------------------------------ */

static char *logs(kb_ctx *c, const char *pod, bool previous, int64_t tail,
    int *rc)
{
	kb_msg *rep = NULL;
	*rc = kb_call(c, "kubelet/" NODE, "log",
	    kb_mp_body("{s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:I, s:I}",
		"namespace", "default", "pod", pod, "container", "", "follow",
		0, "previous", previous, "timestamps", 0, "tailLines", tail,
		"sinceSeconds", (int64_t)-1, "limitBytes", (int64_t)-1),
	    5000, &rep);
	const char *t;
	size_t n;
	char *text = NULL;
	if (*rc == 0 && kb_mp_str(kb_msg_body(rep), "text", &t, &n))
		text = strndup(t, n);
	kb_msg_free(rep);
	return text;
}

static void test_logs_over_the_bus(void **state)
{
	struct env *e = *state;
	int rc;
	create_pod(e->c, "chatty", "chatty", "Always", NULL);
	kb_msg *rep =
	    wait_for(e->c, &KB_GVR_PODS, "default", "chatty", pod_ready, NULL);
	assert_non_null(rep);
	kb_msg_free(rep);
	char *text = logs(e->c, "chatty", false, -1, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(text);
	assert_non_null(strstr(text, "hello from chatty\nsecond line\n"));
	free(text);
	text = logs(e->c, "chatty", false, 1, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(text, "second line\n");
	free(text);
	/* The previous run of a crash-looping container. */
	text = logs(e->c, "crash", true, -1, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "exiting with code 1"));
	free(text);
	text = logs(e->c, "chatty", true, -1, &rc);
	assert_int_equal(rc, KB_EBADREQUEST);
	free(text);
	text = logs(e->c, "nosuchpod", false, -1, &rc);
	assert_int_equal(rc, KB_ENOTFOUND);
	free(text);

	/* And as kubectl gets it: pods/log through the API server. */
	kb_msg *m = NULL;
	rc = kb_call(e->c, "api", "get",
	    kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s}", "group", "", "version",
		"v1", "resource", "pods", "namespace", "default", "name",
		"chatty", "subresource", "log"),
	    5000, &m);
	assert_int_equal(rc, 0);
	const char *t;
	size_t n;
	assert_true(kb_mp_str(kb_msg_body(m), "text", &t, &n));
	assert_non_null(memmem(t, n, "hello from chatty", 17));
	kb_msg_free(m);
}

/* --- deletion -------------------------------------------------------------------- */

static bool gone(kb_ctx *c, const char *name, int ms)
{
	for (int waited = 0; waited < ms; waited += 50) {
		if (kb_api_get(c, &KB_GVR_PODS, "default", name, NULL) ==
		    KB_ENOTFOUND)
			return true;
		sleep_ms(50);
	}
	return false;
}

static void test_graceful_delete(void **state)
{
	struct env *e = *state;
	int rc =
	    kb_api_delete(e->c, &KB_GVR_PODS, "default", "web", NULL, NULL);
	assert_int_equal(rc, 0);
	assert_true(gone(e->c, "web", WAIT_MS));
	/* The kubelet forgets the pod when the informer reports the delete,
	 * a moment after the API object is gone: wait for that, bounded. */
	int lrc = 0;
	for (int i = 0; i < WAIT_MS / 50; i++) {
		free(logs(e->c, "web", false, -1, &lrc));
		if (lrc == KB_ENOTFOUND)
			break;
		sleep_ms(50);
	}
	assert_int_equal(lrc, KB_ENOTFOUND);

	/* A container that ignores SIGTERM holds the pod for its grace period. */
	create_pod(e->c, "stubborn", "sleep-on-term", "Always", NULL);
	kb_msg *rep = wait_for(e->c, &KB_GVR_PODS, "default", "stubborn",
	    pod_ready, NULL);
	assert_non_null(rep);
	kb_msg_free(rep);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = kb_api_delete(e->c, &KB_GVR_PODS, "default", "stubborn", NULL,
	    NULL);
	assert_int_equal(rc, 0);
	assert_true(gone(e->c, "stubborn", WAIT_MS));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(s >= 0.8);

	const char *const rest[] = { "crash", "once-fail", "once-ok",
		"init-fail", "noimage", "chatty" };
	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
		assert_int_equal(kb_api_delete(e->c, &KB_GVR_PODS, "default",
				     rest[i], NULL, NULL),
		    0);
	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
		assert_true(gone(e->c, rest[i], WAIT_MS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_ready_with_lease),
		cmocka_unit_test(test_pod_runs_and_is_ready),
		cmocka_unit_test(test_crash_loop_backoff),
		cmocka_unit_test(test_restart_policies),
		cmocka_unit_test(test_missing_image_waits),
		cmocka_unit_test(test_logs_over_the_bus),
		cmocka_unit_test(test_graceful_delete),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
