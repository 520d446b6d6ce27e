/* tests/scheduler/scheduler.c — the scheduler in a real host with
 * store-lmdb and the API server: Node objects created through the `api`
 * service (no kubelets), pods with node selectors, tolerations and
 * requests landing on the right nodes, a pod that fits nowhere getting
 * PodScheduled=False/Unschedulable with Kubernetes' message and a
 * FailedScheduling event, and scheduled once a node it fits is added or
 * a pod leaves; pods of other schedulers left alone; the Lease held; and
 * profile config errors failing the host's start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <kubus/client.h>
#include <kubus/kubus.h>

#include "harness.h"
#include "sched_test.h"

static const char *groups[] = { "kubus:plugins" };

#define HOST_HEAD                                                              \
	"host:\n"                                                              \
	"  name: t\n"                                                          \
	"  log_level: warn\n"                                                  \
	"plugins:\n"                                                           \
	"  - name: store\n"                                                    \
	"    use: store-lmdb\n"                                                \
	"    config: {sync: false}\n"                                          \
	"  - name: apiserver\n"                                                \
	"    use: apiserver\n"                                                 \
	"    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"           \
	"  - name: scheduler\n"                                                \
	"    use: scheduler\n"

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Fail on error; frees the reply either way. */
static void must(int rc, kb_msg *rep, const char *what)
{
	if (rc) {
		const char *m = "";
		if (rep)
			kb_msg_err(rep, &m);
		fail_msg("%s: %s: %s", what, kb_strerror(rc), m);
	}
	kb_msg_free(rep);
}

static void create(kb_ctx *c, const struct kb_gvr *r, const char *ns,
    const char *json)
{
	kb_msg *rep = NULL;
	int rc = kb_api_create(c, r, ns, jbody(json), &rep);
	must(rc, rep, json);
}

/* A node with labels, taints and what it can hold; its status set through
 * nodes/status, as a kubelet does. */
static void make_node(kb_ctx *c, const char *name, const char *labels,
    const char *spec, const char *cpu, const char *mem)
{
	char json[2048];
	snprintf(json, sizeof(json),
	    "{\"apiVersion\": \"v1\", \"kind\": \"Node\", "
	    "\"metadata\": {\"name\": \"%s\", \"labels\": %s}, \"spec\": %s}",
	    name, labels, spec);
	create(c, &KB_GVR_NODES, NULL, json);
	snprintf(json, sizeof(json),
	    "{\"status\": {\"capacity\": {\"cpu\": \"%s\", \"memory\": \"%s\", "
	    "\"pods\": \"110\"}, \"allocatable\": {\"cpu\": \"%s\", \"memory\": \"%s\", \"pods\": \"110\"}}}",
	    cpu, mem, cpu, mem);
	kb_msg *rep = NULL;
	int rc = kb_api_patch(c, &KB_GVR_NODES, NULL, name, "status", "merge",
	    jbody(json), &rep);
	must(rc, rep, "patch node status");
}

static void make_pod(kb_ctx *c, const char *name, const char *cpu,
    const char *extra)
{
	char json[2048];
	snprintf(json, sizeof(json),
	    "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", "
	    "\"metadata\": {\"name\": \"%s\", \"namespace\": \"sched\"}, \"spec\": {%s%s"
	    "\"containers\": [{\"name\": \"c\", \"image\": \"busybox\", "
	    "\"resources\": {\"requests\": {\"cpu\": \"%s\", \"memory\": \"64Mi\"}}}]}}",
	    name, extra, *extra ? ", " : "", cpu);
	create(c, &KB_GVR_PODS, "sched", json);
}

/* spec.nodeName once set (malloc'd), or NULL after timeout_ms. */
static char *wait_node(kb_ctx *c, const char *pod, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 20) {
		kb_msg *rep = NULL;
		if (kb_api_get(c, &KB_GVR_PODS, "sched", pod, &rep) == 0) {
			char *n =
			    kb_mp_strdup(kb_msg_body(rep), "spec.nodeName");
			kb_msg_free(rep);
			if (n && *n)
				return n;
			free(n);
		} else {
			kb_msg_free(rep);
		}
		sleep_ms(20);
	}
	return NULL;
}

static void expect_node(kb_ctx *c, const char *pod, const char *node)
{
	char *n = wait_node(c, pod, 10000);
	if (n == NULL || strcmp(n, node))
		fail_msg("pod %s: on node %s, want %s", pod, n ? n : "(none)",
		    node);
	free(n);
}

/* The PodScheduled condition's message once it is False (malloc'd). */
static char *wait_unschedulable(kb_ctx *c, const char *pod, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 20) {
		kb_msg *rep = NULL;
		char *msg = NULL;
		if (kb_api_get(c, &KB_GVR_PODS, "sched", pod, &rep) == 0) {
			const msgpack_object *conds =
			    kb_mp_get(kb_msg_body(rep), "status.conditions");
			for (uint32_t i = 0;
			     conds && conds->type == MSGPACK_OBJECT_ARRAY &&
			     i < conds->via.array.size;
			     i++) {
				const msgpack_object *cd =
				    &conds->via.array.ptr[i];
				if (kb_mp_streq(cd, "type", "PodScheduled") &&
				    kb_mp_streq(cd, "status", "False") &&
				    kb_mp_streq(cd, "reason", "Unschedulable"))
					msg = kb_mp_strdup(cd, "message");
			}
		}
		kb_msg_free(rep);
		if (msg)
			return msg;
		sleep_ms(20);
	}
	return NULL;
}

static bool has_event(kb_ctx *c, const char *pod, const char *message)
{
	kb_msg *rep = NULL;
	bool found = false;
	if (kb_api_list(c, &KB_GVR_EVENTS, "sched", NULL, NULL, &rep) == 0) {
		const msgpack_object *items =
		    kb_mp_get(kb_msg_body(rep), "items");
		for (uint32_t i = 0;
		     items && items->type == MSGPACK_OBJECT_ARRAY &&
		     i < items->via.array.size;
		     i++) {
			const msgpack_object *e = &items->via.array.ptr[i];
			found |= kb_mp_streq(e, "involvedObject.name", pod) &&
			    kb_mp_streq(e, "reason", "FailedScheduling") &&
			    kb_mp_streq(e, "type", "Warning") &&
			    kb_mp_streq(e, "message", message);
		}
	}
	kb_msg_free(rep);
	return found;
}

static void test_placement(void **state)
{
	char err[1024];
	struct kbt_host *h = kbt_host_start(HOST_HEAD, err, sizeof(err));
	if (h == NULL)
		fail_msg("host did not start: %s", err);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);
	create(c, &KB_GVR_NAMESPACES, NULL,
	    "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"sched\"}}");
	make_node(c, "n-ssd", "{\"disk\": \"ssd\"}", "{}", "2", "4Gi");
	make_node(c, "n-big", "{}", "{}", "8", "16Gi");
	make_node(c, "n-gpu", "{\"gpu\": \"true\"}",
	    "{\"taints\": [{\"key\": \"dedicated\", \"value\": \"gpu\", \"effect\": \"NoSchedule\"}]}",
	    "2", "4Gi");
	make_node(c, "n-cordoned", "{}", "{\"unschedulable\": true}", "64",
	    "64Gi");

	make_pod(c, "p-ssd", "100m", "\"nodeSelector\": {\"disk\": \"ssd\"}");
	make_pod(c, "p-gpu", "100m",
	    "\"nodeSelector\": {\"gpu\": \"true\"}, \"tolerations\": "
	    "[{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"gpu\", \"effect\": \"NoSchedule\"}]");
	make_pod(c, "p-big", "4", "");
	make_pod(c, "p-affinity", "100m",
	    "\"affinity\": {\"nodeAffinity\": "
	    "{\"requiredDuringSchedulingIgnoredDuringExecution\": {\"nodeSelectorTerms\": "
	    "[{\"matchExpressions\": [{\"key\": \"disk\", \"operator\": \"DoesNotExist\"}]}]}}}");
	make_pod(c, "p-huge", "100", "");

	expect_node(c, "p-ssd", "n-ssd");
	expect_node(c, "p-gpu", "n-gpu");
	expect_node(c, "p-big", "n-big");
	expect_node(c, "p-affinity",
	    "n-big"); /* not ssd, no toleration, not cordoned */

	const char *want =
	    "0/4 nodes are available: 1 node(s) had untolerated taint "
	    "{dedicated: gpu}, 1 node(s) were unschedulable, 2 Insufficient cpu.";
	char *msg = wait_unschedulable(c, "p-huge", 10000);
	if (msg == NULL)
		fail_msg("p-huge never got PodScheduled=False");
	assert_string_equal(msg, want);
	free(msg);
	bool ev = false;
	for (int t = 0; t < 5000 && !(ev = has_event(c, "p-huge", want));
	     t += 50)
		sleep_ms(50);
	assert_true(ev);
	char *n = wait_node(c, "p-huge", 300);
	assert_null(n);

	/* A node it fits: the unschedulable pod moves back and lands. */
	make_node(c, "n-huge", "{}", "{}", "128", "256Gi");
	expect_node(c, "p-huge", "n-huge");

	/* Pods for another scheduler are left alone. */
	make_pod(c, "p-other", "100m",
	    "\"schedulerName\": \"other-scheduler\"");

	/* Resources are accounted: n-big has 8 cpus, p-big holds 4 and
	 * p-affinity 0.1; a 4-cpu pod that avoids n-huge must wait. */
	make_pod(c, "p-big2", "4",
	    "\"affinity\": {\"nodeAffinity\": "
	    "{\"requiredDuringSchedulingIgnoredDuringExecution\": {\"nodeSelectorTerms\": "
	    "[{\"matchFields\": [{\"key\": \"metadata.name\", \"operator\": \"In\", \"values\": [\"n-big\"]}]}]}}}");
	msg = wait_unschedulable(c, "p-big2", 10000);
	assert_non_null(msg);
	assert_string_equal(msg,
	    "0/5 nodes are available: 1 Insufficient cpu, "
	    "1 node(s) had untolerated taint {dedicated: gpu}, "
	    "1 node(s) were unschedulable, "
	    "2 node(s) didn't match Pod's node affinity/selector.");
	free(msg);
	/* Deleting p-big frees room: p-big2 moves back and lands. */
	kb_msg *rep = NULL;
	int rc = kb_api_delete(c, &KB_GVR_PODS, "sched", "p-big",
	    jbody("{\"gracePeriodSeconds\": 0}"), &rep);
	must(rc, rep, "delete p-big");
	expect_node(c, "p-big2", "n-big");
	n = wait_node(c, "p-other", 100);
	assert_null(n);

	/* It scheduled as the holder of its Lease. */
	rc = kb_api_get(c, &KB_GVR_LEASES, "kube-system", "kube-scheduler",
	    &rep);
	assert_int_equal(rc, 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "spec.holderIdentity",
	    "t_scheduler"));
	kb_msg_free(rep);
	kbt_host_stop(h);
}

static void expect_fail(const char *config, const char *needle)
{
	char err[2048];
	char *yaml;
	assert_true(asprintf(&yaml, HOST_HEAD "    config:\n%s", config) > 0);
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	free(yaml);
	if (h) {
		kbt_host_stop(h);
		fail_msg("host started with a bad scheduler config (want %s)",
		    needle);
	}
	if (strstr(err, needle) == NULL)
		fail_msg("error `%s` does not mention `%s`", err, needle);
}

static void test_config_errors(void **state)
{
	expect_fail("      profiles:\n"
		    "        - schedulerName: a\n"
		    "          plugins:\n"
		    "            filter: {enabled: [{name: sched-nosuchpolicy}]}\n",
	    "sched-nosuchpolicy");
	expect_fail("      profiles:\n"
		    "        - schedulerName: a\n"
		    "          plugins:\n"
		    "            filtr: {enabled: [{name: sched-nodename}]}\n",
	    "unknown extension point `filtr`");
	expect_fail("      profiles:\n"
		    "        - schedulerName: a\n"
		    "        - schedulerName: a\n",
	    "same schedulerName");
	expect_fail(
	    "      profiles:\n"
	    "        - schedulerName: a\n"
	    "          plugins:\n"
	    "            score: {enabled: [{name: sched-noderesources, weight: 0}]}\n",
	    "weight");
	expect_fail("      profiles:\n"
		    "        - schedulerName: a\n"
		    "          pluginConfig:\n"
		    "            - name: sched-noderesources\n"
		    "              args: {scoringStrategy: {type: Nope}}\n",
	    "Nope");
	expect_fail("      profiles:\n"
		    "        - schedulerName: a\n"
		    "          plugins:\n"
		    "            score: {enabled: [{name: sched-nodename}]}\n",
	    "has no score slot");
	expect_fail("      clientConnection: {qps: -1}\n", "qps");
	expect_fail("      clientConnection: {burst: 0}\n", "burst");
	expect_fail("      clientConnection: {qsp: 5}\n", "qsp");
}

/* The binding meets a Conflict (a PreBind bound the pod elsewhere first):
 * the assumption is undone, so the node's room is free for the next pod,
 * and the pod stays where the API says it is. */
static void test_bind_conflict(void **state)
{
	char err[1024];
	struct kbt_host *h = kbt_host_start(HOST_HEAD
	    "    config:\n"
	    "      leaderElection: {leaderElect: false}\n"
	    "      profiles:\n"
	    "        - plugins:\n"
	    "            preBind: {enabled: [{name: sched_steal}]}\n"
	    "          pluginConfig:\n"
	    "            - {name: sched_steal, args: {to: n-two}}\n",
	    err, sizeof(err));
	if (h == NULL)
		fail_msg("host did not start: %s", err);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);
	create(c, &KB_GVR_NAMESPACES, NULL,
	    "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": "
	    "{\"name\": \"sched\"}}");
	make_node(c, "n-one", "{\"name\": \"one\"}", "{}", "1", "4Gi");
	make_node(c, "n-two", "{\"name\": \"two\"}", "{}", "1", "4Gi");
	char json[1024];
	snprintf(json, sizeof(json),
	    "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": "
	    "\"stolen\", \"namespace\": \"sched\", \"labels\": {\"steal\": \"yes\"}}, "
	    "\"spec\": {\"nodeSelector\": {\"name\": \"one\"}, \"containers\": "
	    "[{\"name\": \"c\", \"image\": \"busybox\", \"resources\": "
	    "{\"requests\": {\"cpu\": \"1\"}}}]}}");
	create(c, &KB_GVR_PODS, "sched", json);
	expect_node(c, "stolen", "n-two");
	make_pod(c, "after", "1", "\"nodeSelector\": {\"name\": \"one\"}");
	expect_node(c, "after", "n-one");
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_placement),
		cmocka_unit_test(test_bind_conflict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
