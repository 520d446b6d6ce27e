/* tests/unit/test_runtime_fake.c — runtime-fake through its vtable alone
 * (kubus/runtime.h), with a fake host: sandboxes and IPs, containers that
 * run, exit on their own or ignore SIGTERM, missing images, the CRI log
 * lines, many of each made and removed in mixed order, and config
 * errors. */
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

/* Many sandboxes and containers, removed in an order unlike the one they
 * were made in, one by one and with their sandbox: every lookup, list and
 * held log then answers for exactly what is left (the runtime finds them
 * through indexes, not by walking everything it holds). */
#define MANY_SB 37
#define MANY_PER 5

struct many {
	char sb[MANY_SB][KB_RT_ID_MAX];
	char ctr[MANY_SB][MANY_PER][KB_RT_ID_MAX];
	bool sb_live[MANY_SB];
	bool live[MANY_SB][MANY_PER];
	int listed_sb, listed_ctr, bad;
};

static void many_see_sb(void *arg, const struct kb_rt_sandbox_info *sb)
{
	struct many *m = arg;
	m->listed_sb++;
	int i;
	for (i = 0; i < MANY_SB && strcmp(m->sb[i], sb->id); i++)
		;
	char uid[32];
	snprintf(uid, sizeof(uid), "uid-%d", i);
	if (i == MANY_SB || !m->sb_live[i] || strcmp(sb->pod_uid, uid))
		m->bad++;
}

static void many_see_ctr(void *arg, const struct kb_rt_container_info *c)
{
	struct many *m = arg;
	m->listed_ctr++;
	for (int i = 0; i < MANY_SB; i++) {
		for (int j = 0; j < MANY_PER; j++) {
			if (strcmp(m->ctr[i][j], c->id))
				continue;
			char name[16];
			snprintf(name, sizeof(name), "c%d", j);
			if (!m->live[i][j] || strcmp(c->sandbox_id, m->sb[i]) ||
			    strcmp(c->name, name) || c->attempt != (unsigned)j)
				m->bad++;
			return;
		}
	}
	m->bad++;
}

static void many_log(const struct rt *r, int i, int j, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s/logs/ns_p%d_uid-%d/c%d/0.log", r->tmp, i, i, j);
}

static void many_check(struct rt *r, struct many *m)
{
	int nsb = 0, nctr = 0;
	for (int i = 0; i < MANY_SB; i++) {
		nsb += m->sb_live[i];
		for (int j = 0; j < MANY_PER; j++) {
			struct kb_rt_container_status st = { .size = sizeof(st) };
			int rc = r->ops->container_status(r->state, m->ctr[i][j],
			    &st);
			if (m->live[i][j]) {
				nctr++;
				assert_int_equal(rc, 0);
				assert_int_equal(st.state, KB_RT_RUNNING);
			} else {
				assert_int_equal(rc, KB_ENOTFOUND);
			}
		}
	}
	m->listed_sb = m->listed_ctr = m->bad = 0;
	assert_int_equal(r->ops->sandbox_list(r->state, many_see_sb, m), 0);
	assert_int_equal(r->ops->container_list(r->state, many_see_ctr, m), 0);
	assert_int_equal(m->bad, 0);
	assert_int_equal(m->listed_sb, nsb);
	assert_int_equal(m->listed_ctr, nctr);
}

static void test_many(void **state)
{
	struct rt r;
	assert_int_equal(rt_open(&r, NULL), 0);
	struct many *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	char log[1024];
	for (int i = 0; i < MANY_SB; i++) {
		char uid[32], name[32];
		snprintf(uid, sizeof(uid), "uid-%d", i);
		snprintf(name, sizeof(name), "p%d", i);
		struct kb_rt_sandbox_spec spec = { .size = sizeof(spec),
			.uid = uid,
			.ns = "ns",
			.name = name };
		struct kb_rt_sandbox sb = { .size = sizeof(sb) };
		assert_int_equal(r.ops->sandbox_create(r.state, &spec, &sb), 0);
		memcpy(m->sb[i], sb.id, sizeof(m->sb[i]));
		m->sb_live[i] = true;
	}
	/* Containers made across the sandboxes in turn, not one sandbox's
	 * at a time. */
	for (int j = 0; j < MANY_PER; j++) {
		for (int i = 0; i < MANY_SB; i++) {
			char name[16];
			snprintf(name, sizeof(name), "c%d", j);
			many_log(&r, i, j, log, sizeof(log));
			struct kb_rt_container_spec cs = { .size = sizeof(cs),
				.sandbox_id = m->sb[i],
				.name = name,
				.image = "nginx",
				.attempt = (unsigned)j,
				.log_path = log };
			assert_int_equal(r.ops->container_create(r.state, &cs,
					     m->ctr[i][j], KB_RT_ID_MAX),
			    0);
			assert_int_equal(r.ops->container_start(r.state,
					     m->ctr[i][j]),
			    0);
			m->live[i][j] = true;
		}
	}
	for (int a = 0; a < MANY_SB * MANY_PER; a++)
		for (int b = a + 1; b < MANY_SB * MANY_PER; b++)
			assert_string_not_equal(m->ctr[a / MANY_PER][a % MANY_PER],
			    m->ctr[b / MANY_PER][b % MANY_PER]);
	many_check(&r, m);

	/* Single containers, in a stride through the sandboxes, last
	 * container first. */
	for (int j = MANY_PER - 1; j >= 0; j--) {
		for (int k = 0; k < MANY_SB; k++) {
			int i = (k * 11 + 5) % MANY_SB;
			if ((i * 7 + j) % 3 != 0)
				continue;
			assert_int_equal(r.ops->container_remove(r.state,
					     m->ctr[i][j]),
			    0);
			m->live[i][j] = false;
		}
	}
	many_check(&r, m);
	/* Again: nothing else goes. */
	assert_false(m->live[3][0]);
	assert_int_equal(r.ops->container_remove(r.state, m->ctr[3][0]), 0);
	many_check(&r, m);

	/* Whole sandboxes, newest first, with what is left in them. */
	for (int i = MANY_SB - 1; i >= 0; i--) {
		if (i % 4 != 1)
			continue;
		assert_int_equal(r.ops->sandbox_remove(r.state, m->sb[i]), 0);
		m->sb_live[i] = false;
		for (int j = 0; j < MANY_PER; j++)
			m->live[i][j] = false;
	}
	many_check(&r, m);
	assert_int_equal(r.ops->sandbox_remove(r.state, m->sb[1]), 0);
	assert_int_equal(r.ops->sandbox_remove(r.state, "nosuchsandbox"), 0);
	many_check(&r, m);
	/* No container in a sandbox that is gone; one in a live one. */
	assert_false(m->sb_live[5]);
	struct kb_rt_container_spec cs = { .size = sizeof(cs),
		.sandbox_id = m->sb[5],
		.name = "late",
		.image = "nginx" };
	char late[KB_RT_ID_MAX];
	assert_int_equal(r.ops->container_create(r.state, &cs, late,
			     sizeof(late)),
	    KB_ENOTFOUND);
	assert_true(m->sb_live[6]);
	cs.sandbox_id = m->sb[6];
	assert_int_equal(r.ops->container_create(r.state, &cs, late,
			     sizeof(late)),
	    0);
	struct kb_rt_container_status st = { .size = sizeof(st) };
	assert_int_equal(r.ops->container_status(r.state, late, &st), 0);
	assert_int_equal(st.state, KB_RT_CREATED);
	/* The sandbox takes its newest container with the older ones. */
	assert_int_equal(r.ops->sandbox_remove(r.state, m->sb[6]), 0);
	m->sb_live[6] = false;
	for (int j = 0; j < MANY_PER; j++)
		m->live[6][j] = false;
	assert_int_equal(r.ops->container_status(r.state, late, &st),
	    KB_ENOTFOUND);
	many_check(&r, m);

	/* Held logs, one per container: a pod's directory forgets its own
	 * and no other's; a log read is written out, once. */
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/logs/ns_p2_uid-2", r.tmp);
	assert_int_equal(r.ops->log_sync(r.state, dir, false), 0);
	snprintf(dir, sizeof(dir), "%s/logs/ns_p1", r.tmp); /* a prefix only */
	assert_int_equal(r.ops->log_sync(r.state, dir, false), 0);
	for (int i = 0; i < MANY_SB; i++) {
		for (int j = 0; j < MANY_PER; j++) {
			many_log(&r, i, j, log, sizeof(log));
			assert_int_equal(r.ops->log_sync(r.state, log, true), 0);
			char *text = kbt_slurp(log);
			if (i == 2) {
				assert_null(text);
				continue;
			}
			char want[128];
			snprintf(want, sizeof(want),
			    "Z stdout F fake: container c%d (image nginx) attempt %d started\n",
			    j, j);
			assert_non_null(text);
			char *at = strstr(text, want);
			assert_non_null(at);
			assert_null(strstr(at + 1, want));
			free(text);
		}
	}
	free(m);
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
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_config_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
