/* tests/scheduler/example.c — the third-party policy story end to end:
 * the SDK installed to a prefix, sdk/examples/sched-prefer-label copied
 * out of the tree and built with its Makefile through pkg-config only,
 * then named in a scheduler profile of a running host (store-lmdb +
 * apiserver + scheduler, nothing rebuilt) where it draws every pod to
 * the labelled node, which LeastAllocated alone would not. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>
#include <kubus/kubus.h>

#include "harness.h"
#include "sched_test.h"

static const char *groups[] = { "kubus:plugins" };

static char *run_ok(const char *cmd)
{
	char *out = NULL;
	int st = kbt_run(cmd, &out);
	if (st != 0)
		fail_msg("`%s` failed (%d):\n%s", cmd, st, out ? out : "");
	return out;
}

static char *abs_dir(const char *d)
{
	char buf[PATH_MAX];
	if (realpath(d, buf) == NULL)
		fail_msg("no directory %s", d);
	char *s = NULL;
	assert_true(asprintf(&s, "%s/", buf) > 0);
	return s;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void create(kb_ctx *c, const struct kb_gvr *r, const char *ns,
    const char *json)
{
	kb_msg *rep = NULL;
	int rc = kb_api_create(c, r, ns, jbody(json), &rep);
	if (rc) {
		const char *m = "";
		if (rep)
			kb_msg_err(rep, &m);
		fail_msg("create %s: %s: %s", json, kb_strerror(rc), m);
	}
	kb_msg_free(rep);
}

static void make_node(kb_ctx *c, const char *name, const char *labels)
{
	char json[1024];
	snprintf(json, sizeof(json),
	    "{\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": "
	    "{\"name\": \"%s\", \"labels\": %s}}",
	    name, labels);
	create(c, &KB_GVR_NODES, NULL, json);
	kb_msg *rep = NULL;
	int rc = kb_api_patch(c, &KB_GVR_NODES, NULL, name, "status", "merge",
	    jbody("{\"status\": {\"allocatable\": {\"cpu\": \"4\", \"memory\": "
		  "\"8Gi\", \"pods\": \"110\"}}}"),
	    &rep);
	assert_int_equal(rc, 0);
	kb_msg_free(rep);
}

static char *wait_node(kb_ctx *c, const char *pod)
{
	for (int t = 0; t < 10000; t += 20) {
		kb_msg *rep = NULL;
		char *n = NULL;
		if (kb_api_get(c, &KB_GVR_PODS, "default", pod, &rep) == 0)
			n = kb_mp_strdup(kb_msg_body(rep), "spec.nodeName");
		kb_msg_free(rep);
		if (n && *n)
			return n;
		free(n);
		sleep_ms(20);
	}
	return NULL;
}

static void test_out_of_tree_policy(void **state)
{
	char *build = abs_dir(kbt_build_dir());
	char *src = abs_dir(kbt_src_dir());
	char *tmp = kbt_mkdtemp("sched-example");
	char *cmd, *out;

	/* The SDK, installed: only its headers, library and .pc. */
	assert_true(
	    asprintf(&cmd,
		"cmake --install '%s.' --prefix '%s/prefix' --component sdk",
		build, tmp) > 0);
	free(run_ok(cmd));
	free(cmd);
	assert_true(
	    asprintf(&cmd,
		"dirname \"$(find '%s/prefix' -name kubus-sdk.pc | head -1)\"",
		tmp) > 0);
	char *pcdir = run_ok(cmd);
	free(cmd);
	pcdir[strcspn(pcdir, "\n")] = '\0';

	/* The example, copied out of the tree and built with its Makefile. */
	assert_true(
	    asprintf(&cmd,
		"cp -R '%ssdk/examples/sched-prefer-label' '%s/ex' && cd '%s/ex' "
		"&& rm -f *.so && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make "
		"PKG_CONFIG_PATH='%s' CFLAGS='-O2 -g -Wall -Wextra -Werror'",
		src, tmp, tmp, pcdir) > 0);
	out = run_ok(cmd);
	free(cmd);
	if (strstr(out, src) || strstr(out, build))
		fail_msg("the example was built from the source or build tree:\n%s",
		    out);
	free(out);
	char *so;
	assert_true(
	    asprintf(&so, "%s/ex/kubus-sched-prefer-label.so", tmp) > 0);
	assert_int_equal(access(so, R_OK), 0);

	/* A host whose profile names it, with its args. */
	char *yaml;
	assert_true(
	    asprintf(&yaml,
		"host:\n"
		"  name: t\n"
		"  log_level: warn\n"
		"plugins:\n"
		"  - name: store\n"
		"    use: store-lmdb\n"
		"    config: {sync: false}\n"
		"  - name: apiserver\n"
		"    use: apiserver\n"
		"    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
		"  - name: scheduler\n"
		"    use: scheduler\n"
		"    config:\n"
		"      leaderElection: {leaderElect: false}\n"
		"      profiles:\n"
		"        - schedulerName: default-scheduler\n"
		"          plugins:\n"
		"            score: {enabled: [{name: %s, weight: 10}]}\n"
		"          pluginConfig:\n"
		"            - name: %s\n"
		"              args: {label: disktype, value: ssd}\n",
		so, so) > 0);
	char err[1024];
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	free(yaml);
	if (h == NULL)
		fail_msg("host did not start: %s", err);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);
	make_node(c, "n-hdd", "{\"disktype\": \"hdd\"}");
	make_node(c, "n-ssd", "{\"disktype\": \"ssd\"}");
	/* The scheduler's node and pod informers are separate watches, so a
	 * pod made now may reach it before n-ssd does (as on Kubernetes).
	 * A pod that only n-ssd fits is bound once the scheduler has n-ssd
	 * with its allocatable, and so n-hdd, which came first on the same
	 * watch. It requests nothing, so LeastAllocated still leans to n-hdd. */
	create(c, &KB_GVR_PODS, "default",
	    "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": "
	    "\"probe\", \"namespace\": \"default\"}, \"spec\": {\"nodeSelector\": "
	    "{\"disktype\": \"ssd\"}, \"containers\": [{\"name\": \"c\", "
	    "\"image\": \"busybox\"}]}}");
	char *pn = wait_node(c, "probe");
	if (pn == NULL || strcmp(pn, "n-ssd"))
		fail_msg("pod probe landed on %s, want n-ssd", pn ? pn : "(none)");
	free(pn);
	/* LeastAllocated alone would alternate; the policy keeps them on ssd. */
	for (int i = 0; i < 4; i++) {
		char json[512], name[16];
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(json, sizeof(json),
		    "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": "
		    "\"%s\", \"namespace\": \"default\"}, \"spec\": {\"containers\": "
		    "[{\"name\": \"c\", \"image\": \"busybox\", \"resources\": {\"requests\": "
		    "{\"cpu\": \"500m\", \"memory\": \"1Gi\"}}}]}}",
		    name);
		create(c, &KB_GVR_PODS, "default", json);
		char *n = wait_node(c, name);
		if (n == NULL || strcmp(n, "n-ssd"))
			fail_msg("pod %s landed on %s, want n-ssd", name,
			    n ? n : "(none)");
		free(n);
	}
	kbt_host_stop(h);
	kbt_rmrf(tmp);
	free(so);
	free(pcdir);
	free(tmp);
	free(build);
	free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_out_of_tree_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
