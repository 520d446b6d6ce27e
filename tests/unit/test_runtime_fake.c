/* tests/unit/test_runtime_fake.c — runtime-fake through its vtable alone
 * (kubus/runtime.h), with a fake host: sandboxes and IPs, containers that
 * run, exit on their own or ignore SIGTERM, missing images, the CRI log
 * lines, and config errors. */
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/kubus.h>
#include <kubus/runtime.h>

#include "harness.h"

struct fake_host {
	kb_ctx ctx;
	char why[1024];
};

static const char *h_instance(kb_ctx *c)
{
	return "kubelet/runtime-fake";
}

static int h_log_enabled(kb_ctx *c, int level)
{
	return 0;
}

static void h_log(kb_ctx *c, int level, const char *msg, const char *kv)
{
}

static void h_fail(kb_ctx *c, const char *why)
{
	snprintf(((struct fake_host *)c)->why,
	    sizeof(((struct fake_host *)c)->why), "%s", why);
}

static const struct kb_host_api host_api = {
	.size = sizeof(struct kb_host_api),
	.abi_major = KB_ABI_MAJOR,
	.abi_minor = KB_ABI_MINOR,
	.instance = h_instance,
	.log = h_log,
	.log_enabled = h_log_enabled,
	.fail = h_fail,
};

struct rt {
	void *dl;
	const struct kb_plugin *p;
	const struct kb_runtime_ops *ops;
	void *state;
	struct fake_host host;
	char *tmp;
};

static int rt_open(struct rt *r, const char *yaml)
{
	char path[1024], err[512];
	memset(r, 0, sizeof(*r));
	r->host.ctx.api = &host_api;
	snprintf(path, sizeof(path), "%s/plugins/kubus-runtime-fake.so",
	    kbt_build_dir());
	r->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(r->dl);
	kb_plugin_describe_fn d =
	    (kb_plugin_describe_fn)dlsym(r->dl, KB_PLUGIN_SYMBOL);
	assert_non_null(d);
	r->p = d();
	assert_int_equal(r->p->kind, KB_KIND_RUNTIME);
	r->ops = r->p->ops;
	assert_true(r->ops->size >= sizeof(struct kb_runtime_ops));
	kb_conf *conf = yaml ? kb_conf_parse_yaml(yaml, strlen(yaml),
				   "test.yaml", err, sizeof(err)) :
			       NULL;
	int rc = r->p->init(&r->host.ctx, conf, &r->state);
	kb_conf_free(conf);
	r->tmp = kbt_mkdtemp("rtfake");
	return rc;
}

static void rt_close(struct rt *r)
{
	if (r->state)
		r->p->fini(r->state);
	dlclose(r->dl);
	kbt_rmrf(r->tmp);
	free(r->tmp);
}

static void sandbox(struct rt *r, struct kb_rt_sandbox *sb)
{
	struct kb_rt_sandbox_spec spec = { .size = sizeof(spec),
		.uid = "u1",
		.ns = "default",
		.name = "p" };
	sb->size = sizeof(*sb);
	assert_int_equal(r->ops->sandbox_create(r->state, &spec, sb), 0);
}

static void run(struct rt *r, const char *sandbox_id, const char *image,
    char *id, char *log)
{
	struct kb_rt_container_spec cs = { .size = sizeof(cs),
		.sandbox_id = sandbox_id,
		.name = "c",
		.image = image,
		.log_path = log };
	assert_int_equal(r->ops->container_create(r->state, &cs, id,
			     KB_RT_ID_MAX),
	    0);
	assert_int_equal(r->ops->container_start(r->state, id), 0);
}

static struct kb_rt_container_status status(struct rt *r, const char *id)
{
	struct kb_rt_container_status st = { .size = sizeof(st) };
	assert_int_equal(r->ops->container_status(r->state, id, &st), 0);
	return st;
}

static void test_runs_until_stopped(void **state)
{
	struct rt r;
	assert_int_equal(rt_open(&r, NULL), 0);
	struct kb_rt_sandbox a, b;
	sandbox(&r, &a);
	sandbox(&r, &b);
	assert_string_not_equal(a.id, b.id);
	assert_string_equal(a.ip, "10.88.0.1");
	assert_string_equal(b.ip, "10.88.0.2");

	/* Laid out as a kubelet does, and its directories left to the
	 * runtime: a hollow kubelet does not make them. */
	char id[KB_RT_ID_MAX], log[1024];
	snprintf(log, sizeof(log), "%s/logs/default_p_u1/c/0.log", r.tmp);
	run(&r, a.id, "nginx:1.25", id, log);
	/* Held until the log is read (ABI 1.2, log_sync). */
	assert_true(KB_RT_HAS(r.ops, log_sync) && r.ops->log_sync);
	assert_int_equal(access(log, F_OK), -1);
	struct kb_rt_container_status st = status(&r, id);
	assert_int_equal(st.state, KB_RT_RUNNING);
	assert_true(st.started_ms > 0);
	assert_int_equal(r.ops->container_stop(r.state, id, SIGTERM, 1000), 0);
	st = status(&r, id);
	assert_int_equal(st.state, KB_RT_EXITED);
	assert_int_equal(st.exit_code, 128 + SIGTERM);

	assert_int_equal(r.ops->log_sync(r.state, log, true), 0);
	char *text = kbt_slurp(log);
	assert_non_null(text);
	/* One CRI record: "TIMESTAMP stdout F text". */
	assert_non_null(strstr(text,
	    "Z stdout F fake: container c (image nginx:1.25) attempt 0 started\n"));
	free(text);

	/* A second attempt appends to the same file once synced; one
	 * dropped with its pod's directory never reaches the disk. */
	char id2[KB_RT_ID_MAX], log2[1024], dir[900];
	run(&r, a.id, "nginx:1.25", id2, log);
	assert_int_equal(r.ops->log_sync(r.state, log, true), 0);
	text = kbt_slurp(log);
	char *second = strstr(text, "attempt 0 started\n");
	assert_non_null(second);
	assert_non_null(strstr(second + 1, "attempt 0 started\n"));
	free(text);
	snprintf(dir, sizeof(dir), "%s/logs/default_q_u2", r.tmp);
	snprintf(log2, sizeof(log2), "%s/c/0.log", dir);
	run(&r, b.id, "nginx:1.25", id2, log2);
	assert_int_equal(r.ops->log_sync(r.state, dir, false), 0);
	assert_int_equal(r.ops->log_sync(r.state, log2, true), 0);
	assert_int_equal(access(dir, F_OK), -1);

	assert_int_equal(r.ops->container_remove(r.state, id), 0);
	struct kb_rt_container_status gone = { .size = sizeof(gone) };
	assert_int_equal(r.ops->container_status(r.state, id, &gone),
	    KB_ENOTFOUND);
	assert_int_equal(r.ops->container_remove(r.state, id), 0);
	assert_int_equal(r.ops->sandbox_remove(r.state, a.id), 0);
	assert_int_equal(r.ops->sandbox_remove(r.state, a.id), 0);
	struct kb_rt_info info = { .size = sizeof(info) };
	assert_int_equal(r.ops->info(r.state, &info), 0);
	assert_string_equal(info.name, "fake");
	rt_close(&r);
}

static void test_image_behaviours(void **state)
{
	struct rt r;
	assert_int_equal(
	    rt_open(&r,
		"ip_prefix: \"10.9\"\n"
		"images:\n"
		"  slowexit: {exit_code: 3, run_for: 100ms, log: \"a\\nb\"}\n"),
	    0);
	struct kb_rt_sandbox sb;
	sandbox(&r, &sb);
	assert_string_equal(sb.ip, "10.9.0.1");
	char id[KB_RT_ID_MAX], log[1024];
	snprintf(log, sizeof(log), "%s/x.log", r.tmp);

	run(&r, sb.id, "registry.local/tests/fail:v1", id, NULL);
	struct kb_rt_container_status st = status(&r, id);
	assert_int_equal(st.state, KB_RT_EXITED);
	assert_int_equal(st.exit_code, 1);
	assert_string_equal(st.reason, "Error");

	run(&r, sb.id, "complete", id, NULL);
	st = status(&r, id);
	assert_int_equal(st.exit_code, 0);
	assert_string_equal(st.reason, "Completed");

	run(&r, sb.id, "slowexit", id, log);
	assert_int_equal(status(&r, id).state, KB_RT_RUNNING);
	struct timespec ts = { 0, 150 * 1000000L };
	nanosleep(&ts, NULL);
	st = status(&r, id);
	assert_int_equal(st.state, KB_RT_EXITED);
	assert_int_equal(st.exit_code, 3);
	assert_int_equal(r.ops->log_sync(r.state, log, true), 0);
	char *text = kbt_slurp(log);
	assert_non_null(strstr(text, "stdout F a\n"));
	assert_non_null(strstr(text, "stdout F b\n"));
	assert_non_null(strstr(text, "exiting with code 3"));
	free(text);

	/* SIGTERM ignored: stop waits for its timeout, then kills. */
	run(&r, sb.id, "sleep-on-term", id, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(r.ops->container_stop(r.state, id, SIGTERM, 200), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 +
		(t1.tv_nsec - t0.tv_nsec) / 1000000 >=
	    190);
	assert_int_equal(status(&r, id).exit_code, 128 + SIGKILL);

	bool present = true;
	assert_int_equal(r.ops->image_present(r.state, "missing:latest",
			     &present),
	    0);
	assert_false(present);
	assert_int_equal(r.ops->image_present(r.state, "busybox", &present), 0);
	assert_true(present);
	struct kb_rt_container_spec cs = { .size = sizeof(cs),
		.sandbox_id = sb.id,
		.name = "m",
		.image = "missing" };
	assert_int_equal(r.ops->container_create(r.state, &cs, id, sizeof(id)),
	    KB_ENOTFOUND);
	cs.image = "nginx";
	cs.sandbox_id = "nosuchsandbox";
	assert_int_equal(r.ops->container_create(r.state, &cs, id, sizeof(id)),
	    KB_ENOTFOUND);
	/* Removing the sandbox takes its containers with it (fini frees the rest). */
	assert_int_equal(r.ops->sandbox_remove(r.state, sb.id), 0);
	assert_int_equal(r.ops->container_status(r.state, id, &st),
	    KB_ENOTFOUND);
	run(&r, (sandbox(&r, &sb), sb.id), "nginx", id, NULL);
	rt_close(&r);
}

/* ABI 1.1: listing what runs (for adoption) and exec (for probes). */
struct seen {
	int nsb, nctr;
	char sb_uid[KB_RT_ID_MAX], sb_ip[KB_RT_IP_MAX], ctr_name[KB_RT_ID_MAX];
	unsigned attempt;
	int state;
};

static void see_sb(void *arg, const struct kb_rt_sandbox_info *sb)
{
	struct seen *s = arg;
	s->nsb++;
	snprintf(s->sb_uid, sizeof(s->sb_uid), "%s", sb->pod_uid);
	snprintf(s->sb_ip, sizeof(s->sb_ip), "%s", sb->ip);
}

static void see_ctr(void *arg, const struct kb_rt_container_info *c)
{
	struct seen *s = arg;
	s->nctr++;
	snprintf(s->ctr_name, sizeof(s->ctr_name), "%s", c->name);
	s->attempt = c->attempt;
	s->state = c->state;
}

static void test_list_and_exec(void **state)
{
	struct rt r;
	assert_int_equal(rt_open(&r, NULL), 0);
	assert_true(KB_RT_HAS(r.ops, exec_sync));
	assert_non_null(r.ops->sandbox_list);
	assert_non_null(r.ops->container_list);
	assert_non_null(r.ops->exec_sync);
	struct kb_rt_sandbox sb;
	sandbox(&r, &sb);
	char id[KB_RT_ID_MAX];
	struct kb_rt_container_spec cs = { .size = sizeof(cs),
		.sandbox_id = sb.id,
		.pod_uid = "u1",
		.name = "web",
		.image = "pause",
		.attempt = 3 };
	assert_int_equal(r.ops->container_create(r.state, &cs, id, sizeof(id)),
	    0);
	assert_int_equal(r.ops->container_start(r.state, id), 0);
	struct seen s = { 0 };
	assert_int_equal(r.ops->sandbox_list(r.state, see_sb, &s), 0);
	assert_int_equal(r.ops->container_list(r.state, see_ctr, &s), 0);
	assert_int_equal(s.nsb, 1);
	assert_string_equal(s.sb_uid, "u1");
	assert_string_equal(s.sb_ip, sb.ip);
	assert_int_equal(s.nctr, 1);
	assert_string_equal(s.ctr_name, "web");
	assert_int_equal(s.attempt, 3);
	assert_int_equal(s.state, KB_RT_RUNNING);

	int code = -1;
	char out[256];
	const char *t[] = { "true", NULL }, *f[] = { "/bin/false", NULL };
	assert_int_equal(r.ops->exec_sync(r.state, id, t, 1000, &code, out,
			     sizeof(out)),
	    0);
	assert_int_equal(code, 0);
	assert_int_equal(r.ops->exec_sync(r.state, id, f, 1000, &code, out,
			     sizeof(out)),
	    0);
	assert_int_equal(code, 1);
	const char *sh[] = { "sh", "-c", "exit 7", NULL };
	assert_int_equal(r.ops->exec_sync(r.state, id, sh, 1000, &code, out,
			     sizeof(out)),
	    0);
	assert_int_equal(code, 7);
	/* cat FILE: the file on the host decides. */
	char path[1024];
	snprintf(path, sizeof(path), "%s/healthy", r.tmp);
	const char *cat[] = { "cat", path, NULL };
	assert_int_equal(r.ops->exec_sync(r.state, id, cat, 1000, &code, out,
			     sizeof(out)),
	    0);
	assert_int_equal(code, 1);
	assert_non_null(strstr(out, "No such file or directory"));
	FILE *fp = fopen(path, "w");
	fclose(fp);
	assert_int_equal(r.ops->exec_sync(r.state, id, cat, 1000, &code, out,
			     sizeof(out)),
	    0);
	assert_int_equal(code, 0);
	/* Longer than its timeout. */
	const char *slp[] = { "sleep", "5", NULL };
	assert_int_equal(r.ops->exec_sync(r.state, id, slp, 100, &code, out,
			     sizeof(out)),
	    KB_ETIMEOUT);
	const char *echo[] = { "echo", "hi", "there", NULL };
	assert_int_equal(r.ops->exec_sync(r.state, id, echo, 100, &code, out,
			     sizeof(out)),
	    0);
	assert_string_equal(out, "hi there");
	/* Bad input: no argv, unknown id, a stopped container. */
	const char *none[] = { NULL };
	assert_int_equal(r.ops->exec_sync(r.state, id, none, 100, &code, out,
			     sizeof(out)),
	    KB_EINVAL);
	assert_int_equal(r.ops->exec_sync(r.state, "nope", t, 100, &code, NULL,
			     0),
	    KB_ENOTFOUND);
	assert_int_equal(r.ops->container_stop(r.state, id, SIGKILL, 0), 0);
	assert_int_not_equal(r.ops->exec_sync(r.state, id, t, 100, &code, out,
				 sizeof(out)),
	    0);
	assert_non_null(strstr(out, "not running"));
	rt_close(&r);
}

static void test_config_errors(void **state)
{
	struct rt r;
	assert_int_equal(rt_open(&r, "imagez: {}\n"), KB_EINVAL);
	assert_non_null(strstr(r.host.why, "unknown key `imagez`"));
	rt_close(&r);
	assert_int_equal(rt_open(&r, "images: {x: {run_for: soon}}\n"),
	    KB_EINVAL);
	assert_non_null(strstr(r.host.why, "`run_for` must be a duration"));
	rt_close(&r);
	assert_int_equal(rt_open(&r, "images: {x: {exit_code: 300}}\n"),
	    KB_EINVAL);
	assert_non_null(strstr(r.host.why, "exit_code"));
	rt_close(&r);
	assert_int_equal(rt_open(&r, "images: [a, b]\n"), KB_EINVAL);
	assert_non_null(strstr(r.host.why, "must be a map"));
	rt_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_until_stopped),
		cmocka_unit_test(test_image_behaviours),
		cmocka_unit_test(test_list_and_exec),
		cmocka_unit_test(test_config_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
