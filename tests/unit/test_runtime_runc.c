/* tests/unit/test_runtime_runc.c — runtime-runc through its vtable alone
 * (kubus/runtime.h) with a fake host: real busybox containers through runc
 * in a network namespace the test makes (loopback only, no route out):
 * CRI log lines, env, args, a bind mount, exec with exit code and timeout,
 * SIGTERM with grace and SIGKILL after it, exit codes and reasons (3,
 * OOMKilled, ContainerCannotRun), the memory limit in the cgroup, listing
 * from a fresh instance (a restarted kubelet), bad input, and a cleanup
 * that leaves no runc container, mount, state dir or cgroup.
 *
 * Needs root and runc; skips (saying why) without them. The image is
 * busybox from the image store when build/images/busybox.tar is there and
 * the plugin has the store, else a rootfs made here from /bin/busybox. */
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static char g_base[512]; /* /tmp/kbt-rr-… */
/* The runtime binary: $KUBUS_TEST_RUNC (crun works too), else runc. */
static const char *g_runc = "runc";

static const char *h_instance(kb_ctx *c)
{
	return "kubelet/runtime-runc";
}

static const char *h_data_dir(kb_ctx *c)
{
	return g_base;
}

static int h_log_enabled(kb_ctx *c, int level)
{
	return level <= KB_LOG_WARN;
}

static void h_log(kb_ctx *c, int level, const char *msg, const char *kv)
{
	if (level <= KB_LOG_WARN)
		fprintf(stderr, "runtime-runc: %s %s\n", msg, kv ? kv : "");
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
	.data_dir = h_data_dir,
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
};

/* The suite's shared state. */
static struct {
	bool skip;
	char why[256];
	char netns[64], netns_path[128];
	char cgparent[64];
	char image[64];
	bool have_cfg_image; /* rr-cfg:1 built with `kubus image build` */
	char yaml[2048];
	struct rt rt;
	struct kb_rt_sandbox sb;
} g;

static int rt_open(struct rt *r, const char *yaml)
{
	char path[1024], err[512];
	memset(r, 0, sizeof(*r));
	r->host.ctx.api = &host_api;
	snprintf(path, sizeof(path), "%s/plugins/kubus-runtime-runc.so",
	    kbt_build_dir());
	r->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (r->dl == NULL) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return -1;
	}
	kb_plugin_describe_fn d =
	    (kb_plugin_describe_fn)dlsym(r->dl, KB_PLUGIN_SYMBOL);
	if (d == NULL)
		return -1;
	r->p = d();
	if (r->p->kind != KB_KIND_RUNTIME)
		return -1;
	r->ops = r->p->ops;
	kb_conf *conf = kb_conf_parse_yaml(yaml, strlen(yaml), "test.yaml", err,
	    sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "yaml: %s\n", err);
		return -1;
	}
	int rc = r->p->init(&r->host.ctx, conf, &r->state);
	kb_conf_free(conf);
	if (rc)
		fprintf(stderr, "init: %s\n", r->host.why);
	return rc;
}

static void rt_close(struct rt *r)
{
	if (r->state)
		r->p->fini(r->state);
	r->state = NULL;
	if (r->dl)
		dlclose(r->dl);
	r->dl = NULL;
}

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	char *out = NULL;
	int rc = kbt_run(cmd, &out);
	free(out);
	return rc;
}

static char *sh_out(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	char *out = NULL;
	kbt_run(cmd, &out);
	return out;
}

/* A minimal root filesystem: busybox and its applets. */
static void make_rootfs(const char *dir)
{
	sh("mkdir -p %s/bin %s/etc %s/proc %s/sys %s/dev %s/tmp %s/root "
	   "&& cp /bin/busybox %s/bin/busybox && chmod 1777 %s/tmp",
	    dir, dir, dir, dir, dir, dir, dir, dir, dir);
	sh("for a in $(/bin/busybox --list); do [ $a = busybox ] || "
	   "ln -sf busybox %s/bin/$a; done",
	    dir);
	sh("printf 'root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534::/:"
	   "/bin/false\\n' > %s/etc/passwd && printf 'root:x:0:\\n' > "
	   "%s/etc/group",
	    dir, dir);
}

static void cleanup_leftovers(void)
{
	/* A namespace file still mounted elsewhere for a moment: retry. */
	sh("for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /run/netns/%s ] || break; "
	   "ip netns del %s 2>/dev/null; [ -e /run/netns/%s ] || break; "
	   "sleep 0.2; done",
	    g.netns, g.netns, g.netns);
	if (*g_base) {
		char *ids = sh_out("%s --root %s/runc list -q 2>/dev/null",
		    g_runc, g_base);
		for (char *p = ids; p && *p;) {
			size_t n = strcspn(p, "\n");
			if (n)
				sh("%s --root %s/runc delete --force %.*s",
				    g_runc, g_base, (int)n, p);
			p += n;
			if (*p)
				p++;
		}
		free(ids);
		sh("grep -o ' %s[^ ]*' /proc/self/mountinfo | sort -r | "
		   "xargs -r -n1 umount -l",
		    g_base);
	}
	sh("for m in /sys/fs/cgroup/*/; do d=${m}%s; [ -d $d ] && "
	   "find $d -depth -type d -exec rmdir {} \\; ; done 2>/dev/null",
	    g.cgparent + 1);
}

static int suite_setup(void **state)
{
	memset(&g, 0, sizeof(g));
	snprintf(g.netns, sizeof(g.netns), "kbt-rr-%d", (int)getpid());
	snprintf(g.netns_path, sizeof(g.netns_path), "/run/netns/%s", g.netns);
	snprintf(g.cgparent, sizeof(g.cgparent), "/kbt-rr-%d", (int)getpid());
	if (geteuid() != 0) {
		g.skip = true;
		snprintf(g.why, sizeof(g.why), "not root");
		return 0;
	}
	if (getenv("KUBUS_TEST_RUNC") && *getenv("KUBUS_TEST_RUNC"))
		g_runc = getenv("KUBUS_TEST_RUNC");
	if (sh("%s --version >/dev/null 2>&1", g_runc) != 0) {
		g.skip = true;
		snprintf(g.why, sizeof(g.why), "%s is not installed", g_runc);
		return 0;
	}
	if (access("/bin/busybox", X_OK) != 0) {
		g.skip = true;
		snprintf(g.why, sizeof(g.why), "/bin/busybox is missing");
		return 0;
	}
	cleanup_leftovers();
	char *t = kbt_mkdtemp("kbt-rr");
	snprintf(g_base, sizeof(g_base), "%s", t);
	free(t);
	assert_int_equal(sh("ip netns add %s && ip -n %s link set lo up",
			     g.netns, g.netns),
	    0);
	char rootfs[600];
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", g_base);
	make_rootfs(rootfs);
	sh("mkdir -p %s/bind %s/logs && echo bound-file > %s/bind/f", g_base,
	    g_base, g_base);
	snprintf(g.yaml, sizeof(g.yaml),
	    "runc: %s\n"
	    "images: %s/images\n"
	    "cgroup_parent: %s\n"
	    "local_images:\n"
	    "  busybox-local: %s\n",
	    g_runc, g_base, g.cgparent, rootfs);
	/* An image with a config of its own (entrypoint, cmd, env, workdir,
	 * user), through the CLI, when this build has it. */
	char kubus[600];
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	if (access(kubus, X_OK) == 0 &&
	    sh("%s image build rr-cfg:1 %s --entrypoint '[\"sh\",\"-c\"]' "
	       "--cmd '[\"echo image-cmd $IMGENV $(id -u) $(pwd)\"]' "
	       "--env IMGENV=from-image --workdir /tmp --user nobody "
	       "--data-dir %s",
		kubus, rootfs, g_base) == 0)
		g.have_cfg_image = true;
	else
		fprintf(stderr,
		    "test_runtime_runc: no `kubus image build`: "
		    "the image config part is skipped\n");
	if (rt_open(&g.rt, g.yaml) != 0)
		return -1;
	/* The image store's busybox (build/images/busybox.tar, preloaded
	 * by init) when there, else the local rootfs. */
	bool present = false;
	g.rt.ops->image_present(g.rt.state, "busybox", &present);
	snprintf(g.image, sizeof(g.image), "%s",
	    present ? "busybox" : "busybox-local");
	fprintf(stderr, "test_runtime_runc: image %s (%s)\n", g.image,
	    present ? "the image store" : "a rootfs made from /bin/busybox");
	struct kb_rt_sandbox_spec spec = { .size = sizeof(spec),
		.uid = "0b7e6c2a-rr-test",
		.ns = "default",
		.name = "rr-pod",
		.hostname = "rr-pod",
		.netns_path = g.netns_path,
		.cni_result = "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":"
			      "\"10.99.0.7/24\"}]}" };
	g.sb.size = sizeof(g.sb);
	assert_int_equal(g.rt.ops->sandbox_create(g.rt.state, &spec, &g.sb), 0);
	assert_string_equal(g.sb.ip, "10.99.0.7");
	return 0;
}

static int suite_teardown(void **state)
{
	if (g.skip)
		return 0;
	if (g.rt.state)
		g.rt.ops->sandbox_remove(g.rt.state, g.sb.id);
	rt_close(&g.rt);
	cleanup_leftovers();
	if (*g_base)
		kbt_rmrf(g_base);
	return 0;
}

#define SKIP_IF_NEEDED()                                                       \
	do {                                                                   \
		if (g.skip) {                                                  \
			fprintf(stderr, "SKIP test_runtime_runc: %s\n",        \
			    g.why);                                            \
			skip();                                                \
		}                                                              \
	} while (0)

/* A msgpack container spec {command: [...], args: [...]} for the call. */
struct cobj {
	msgpack_sbuffer sb;
	msgpack_unpacked u;
};

static const msgpack_object *cobj(struct cobj *c, const char *const *cmd,
    const char *const *args)
{
	msgpack_sbuffer_init(&c->sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &c->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (cmd != NULL) + (args != NULL));
	const char *const *lists[2] = { cmd, args };
	const char *keys[2] = { "command", "args" };
	for (int k = 0; k < 2; k++) {
		if (lists[k] == NULL)
			continue;
		size_t n = 0;
		while (lists[k][n])
			n++;
		msgpack_pack_str_with_body(&pk, keys[k], strlen(keys[k]));
		msgpack_pack_array(&pk, n);
		for (size_t i = 0; i < n; i++)
			msgpack_pack_str_with_body(&pk, lists[k][i],
			    strlen(lists[k][i]));
	}
	msgpack_unpacked_init(&c->u);
	msgpack_unpack_next(&c->u, c->sb.data, c->sb.size, NULL);
	return &c->u.data;
}

static void cobj_free(struct cobj *c)
{
	msgpack_unpacked_destroy(&c->u);
	msgpack_sbuffer_destroy(&c->sb);
}

static const char *g_create_image; /* NULL: g.image */

static int create(const char *name, const char *const *cmd,
    const char *const *args, const char *const *env,
    const struct kb_rt_mount *mounts, size_t nmounts, int64_t mem, char *id,
    char *log, size_t loglen)
{
	struct cobj co;
	snprintf(log, loglen, "%s/logs/%s.log", g_base, name);
	struct kb_rt_container_spec cs = { .size = sizeof(cs),
		.sandbox_id = g.sb.id,
		.pod_uid = "0b7e6c2a-rr-test",
		.name = name,
		.image = g_create_image ? g_create_image : g.image,
		.container = cobj(&co, cmd, args),
		.env = env,
		.mounts = mounts,
		.nmounts = nmounts,
		.cpu_request_milli = 100,
		.cpu_limit_milli = 500,
		.memory_limit_bytes = mem,
		.log_path = log };
	int rc = g.rt.ops->container_create(g.rt.state, &cs, id, KB_RT_ID_MAX);
	cobj_free(&co);
	return rc;
}

static struct kb_rt_container_status status(struct rt *r, const char *id)
{
	struct kb_rt_container_status st = { .size = sizeof(st) };
	assert_int_equal(r->ops->container_status(r->state, id, &st), 0);
	return st;
}

static struct kb_rt_container_status wait_exited(const char *id, int ms)
{
	struct kb_rt_container_status st;
	for (int i = 0; i < ms / 20; i++) {
		st = status(&g.rt, id);
		if (st.state == KB_RT_EXITED)
			break;
		usleep(20000);
	}
	return st;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct seen {
	char id[KB_RT_ID_MAX];
	int state;
	bool found;
	char sb[KB_RT_ID_MAX];
	bool sb_found;
	char ip[KB_RT_IP_MAX];
};

static void on_ctr(void *arg, const struct kb_rt_container_info *c)
{
	struct seen *s = arg;
	if (!strcmp(c->id, s->id)) {
		s->found = true;
		s->state = c->state;
		assert_string_equal(c->name, "main");
		assert_string_equal(c->sandbox_id, s->sb);
		assert_string_equal(c->pod_uid, "0b7e6c2a-rr-test");
	}
}

static void on_sb(void *arg, const struct kb_rt_sandbox_info *sb)
{
	struct seen *s = arg;
	if (!strcmp(sb->id, s->sb)) {
		s->sb_found = true;
		snprintf(s->ip, sizeof(s->ip), "%s", sb->ip);
		assert_string_equal(sb->name, "rr-pod");
		assert_string_equal(sb->ns, "default");
	}
}

/* The memory cgroup of pid: its memory limit. */
static long long mem_limit_of(int pid)
{
	char *cg = sh_out("awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "
			  "/proc/%d/cgroup",
	    pid);
	long long v = -1;
	if (cg && *cg) {
		cg[strcspn(cg, "\n")] = '\0';
		char path[1024];
		snprintf(path, sizeof(path),
		    "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", cg);
		char *t = kbt_slurp(path);
		if (t)
			v = atoll(t);
		free(t);
		assert_non_null(strstr(cg, g.cgparent));
	} else {
		free(cg);
		cg =
		    sh_out("awk -F: '$1 == 0 {print $3}' /proc/%d/cgroup", pid);
		if (cg) {
			cg[strcspn(cg, "\n")] = '\0';
			char path[1024];
			snprintf(path, sizeof(path),
			    "/sys/fs/cgroup%s/memory.max", cg);
			char *t = kbt_slurp(path);
			if (t)
				v = atoll(t);
			free(t);
		}
	}
	free(cg);
	return v;
}

static void test_run_logs_exec_restart(void **state)
{
	SKIP_IF_NEEDED();
	char id[KB_RT_ID_MAX], log[1024], bind[600];
	snprintf(bind, sizeof(bind), "%s/bind", g_base);
	struct kb_rt_mount m[] = { { bind, "/mnt/data", true } };
	const char *cmd[] = { "/bin/sh", "-c", NULL };
	const char *args[] = { "echo hello; echo err >&2; echo args=$0,$1; "
			       "env; cat /mnt/data/f; hostname; "
			       "touch /mnt/data/x 2>/dev/null || echo ro-ok; "
			       "sleep 30",
		"first", "second", NULL };
	(void)cmd;
	const char *env[] = { "FOO=bar", "PATH=/bin", NULL };
	const char *cmd2[] = { "/bin/sh", "-c", args[0], "first", "second",
		NULL };
	int64_t t0 = mono_ms();
	assert_int_equal(create("main", cmd2, NULL, env, m, 1, 64 << 20, id,
			     log, sizeof(log)),
	    0);
	struct kb_rt_container_status st = status(&g.rt, id);
	assert_int_equal(st.state, KB_RT_CREATED);
	assert_true(st.created_ms > 0);
	assert_int_equal(g.rt.ops->container_start(g.rt.state, id), 0);
	fprintf(stderr, "test_runtime_runc: create+start %lld ms\n",
	    (long long)(mono_ms() - t0));
	st = status(&g.rt, id);
	assert_int_equal(st.state, KB_RT_RUNNING);
	assert_true(st.pid > 0);
	assert_true(st.started_ms >= st.created_ms);
	/* The shim is detached: not our child, not in our session. */
	{
		char sp[1024];
		snprintf(sp, sizeof(sp), "%s/runtime-runc/containers/%s/shim",
		    g_base, id);
		char *t = kbt_slurp(sp);
		assert_non_null(t);
		int spid = atoi(t);
		free(t);
		assert_true(spid > 0);
		assert_int_equal(kill(spid, 0), 0);
		assert_int_not_equal(getsid(spid), getsid(0));
		char *pp = sh_out("ps -o ppid= -p %d", spid);
		assert_int_not_equal(atoi(pp), getpid());
		free(pp);
	}
	/* A second start is refused. */
	assert_int_not_equal(g.rt.ops->container_start(g.rt.state, id), 0);

	char *text = kbt_wait_file(log, "ro-ok", 10000);
	assert_non_null(text);
	assert_non_null(strstr(text, "Z stdout F hello\n"));
	assert_non_null(strstr(text, "Z stderr F err\n"));
	assert_non_null(strstr(text, "stdout F args=first,second\n"));
	assert_non_null(strstr(text, "stdout F FOO=bar\n"));
	assert_non_null(strstr(text, "stdout F PATH=/bin\n"));
	assert_non_null(strstr(text, "stdout F bound-file\n"));
	assert_non_null(strstr(text, "stdout F rr-pod\n"));
	/* 2026-01-02T03:04:05.123456789Z */
	assert_int_equal(text[4], '-');
	assert_int_equal(text[10], 'T');
	assert_int_equal(text[19], '.');
	assert_int_equal(text[29], 'Z');
	free(text);

	/* The limit reached the cgroup. */
	assert_int_equal(mem_limit_of(st.pid), 64LL << 20);
	/* The pod's network namespace: only lo, no route out. */
	char cmdline[256];
	snprintf(cmdline, sizeof(cmdline), "readlink /proc/%d/ns/net", st.pid);
	char *a = sh_out("%s", cmdline);
	char *b =
	    sh_out("ip netns exec %s readlink /proc/self/ns/net", g.netns);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, b);
	free(a);
	free(b);

	/* exec: output, exit code, env; and a timeout. */
	int code = -1;
	char out[256];
	const char *ex1[] = { "sh", "-c", "echo out $FOO; exit 7", NULL };
	assert_int_equal(g.rt.ops->exec_sync(g.rt.state, id, ex1, 5000, &code,
			     out, sizeof(out)),
	    0);
	assert_int_equal(code, 7);
	assert_string_equal(out, "out bar\n");
	const char *ex2[] = { "sleep", "20", NULL };
	int64_t e0 = mono_ms();
	assert_int_equal(g.rt.ops->exec_sync(g.rt.state, id, ex2, 500, &code,
			     out, sizeof(out)),
	    KB_ETIMEOUT);
	int64_t took = mono_ms() - e0;
	assert_true(took >= 450 && took < 5000);
	/* The timed-out process is gone from the container. */
	const char *ex3[] = { "sh", "-c",
		"ps -o pid,args | grep -c '[s]leep 20' || true", NULL };
	assert_int_equal(g.rt.ops->exec_sync(g.rt.state, id, ex3, 5000, &code,
			     out, sizeof(out)),
	    0);
	assert_int_equal(atoi(out), 0);
	const char *ex4[] = { "/no/such/binary", NULL };
	assert_int_equal(g.rt.ops->exec_sync(g.rt.state, id, ex4, 5000, &code,
			     out, sizeof(out)),
	    0);
	assert_int_not_equal(code, 0);

	/* A fresh instance (a restarted kubelet) sees the same. */
	struct rt r2;
	assert_int_equal(rt_open(&r2, g.yaml), 0);
	struct seen s = { 0 };
	snprintf(s.id, sizeof(s.id), "%s", id);
	snprintf(s.sb, sizeof(s.sb), "%s", g.sb.id);
	assert_int_equal(r2.ops->container_list(r2.state, on_ctr, &s), 0);
	assert_int_equal(r2.ops->sandbox_list(r2.state, on_sb, &s), 0);
	assert_true(s.found);
	assert_int_equal(s.state, KB_RT_RUNNING);
	assert_true(s.sb_found);
	assert_string_equal(s.ip, "10.99.0.7");
	struct kb_rt_container_status st2 = status(&r2, id);
	assert_int_equal(st2.state, KB_RT_RUNNING);
	assert_int_equal(st2.pid, st.pid);
	struct kb_rt_info info = { .size = sizeof(info) };
	assert_int_equal(r2.ops->info(r2.state, &info), 0);
	assert_string_equal(info.name,
	    strrchr(g_runc, '/') ? strrchr(g_runc, '/') + 1 : g_runc);
	assert_true(info.version[0] >= '0' && info.version[0] <= '9');
	/* sh ignores SIGTERM as pid 1: the grace runs out, then SIGKILL. */
	e0 = mono_ms();
	assert_int_equal(r2.ops->container_stop(r2.state, id, SIGTERM, 1000),
	    0);
	took = mono_ms() - e0;
	assert_true(took >= 900 && took < 8000);
	rt_close(&r2);
	st = status(&g.rt, id);
	assert_int_equal(st.state, KB_RT_EXITED);
	assert_int_equal(st.exit_code, 137);
	assert_true(st.finished_ms >= st.started_ms);
	/* Stopping again is a no-op; exec in it is refused. */
	assert_int_equal(g.rt.ops->container_stop(g.rt.state, id, SIGTERM,
			     1000),
	    0);
	assert_int_not_equal(g.rt.ops->exec_sync(g.rt.state, id, ex1, 1000,
				 &code, out, sizeof(out)),
	    0);
	assert_int_equal(g.rt.ops->container_remove(g.rt.state, id), 0);
	assert_int_equal(g.rt.ops->container_status(g.rt.state, id, &st),
	    KB_ENOTFOUND);
	/* The log stays: it is the kubelet's. */
	assert_int_equal(access(log, F_OK), 0);
}

static void test_term_with_grace(void **state)
{
	SKIP_IF_NEEDED();
	char id[KB_RT_ID_MAX], log[1024];
	const char *cmd[] = { "sh", "-c",
		"trap 'echo got-term; exit 0' TERM; echo ready; "
		"while true; do sleep 1; done",
		NULL };
	assert_int_equal(create("graceful", cmd, NULL, NULL, NULL, 0, 0, id,
			     log, sizeof(log)),
	    0);
	assert_int_equal(g.rt.ops->container_start(g.rt.state, id), 0);
	free(kbt_wait_file(log, "ready", 10000));
	int64_t t0 = mono_ms();
	assert_int_equal(g.rt.ops->container_stop(g.rt.state, id, SIGTERM,
			     20000),
	    0);
	assert_true(mono_ms() - t0 < 5000);
	struct kb_rt_container_status st = status(&g.rt, id);
	assert_int_equal(st.state, KB_RT_EXITED);
	assert_int_equal(st.exit_code, 0);
	assert_string_equal(st.reason, "Completed");
	char *text = kbt_wait_file(log, "got-term", 2000);
	assert_non_null(text);
	free(text);
	assert_int_equal(g.rt.ops->container_remove(g.rt.state, id), 0);
}

static void test_exit_codes(void **state)
{
	SKIP_IF_NEEDED();
	char id[KB_RT_ID_MAX], log[1024];
	/* exit 3, with a line longer than the 16 KiB record limit and a
	 * last line without a newline */
	const char *cmd[] = { "sh", "-c",
		"head -c 20000 /dev/zero | tr '\\0' x; echo; printf tail; "
		"exit 3",
		NULL };
	assert_int_equal(create("three", cmd, NULL, NULL, NULL, 0, 0, id, log,
			     sizeof(log)),
	    0);
	assert_int_equal(g.rt.ops->container_start(g.rt.state, id), 0);
	struct kb_rt_container_status st = wait_exited(id, 10000);
	assert_int_equal(st.state, KB_RT_EXITED);
	assert_int_equal(st.exit_code, 3);
	assert_string_equal(st.reason, "Error");
	assert_true(st.finished_ms >= st.started_ms && st.started_ms > 0);
	char *text = kbt_slurp(log);
	assert_non_null(text);
	assert_non_null(strstr(text, " stdout P xxxx"));
	assert_non_null(strstr(text, " stdout F tail\n"));
	free(text);
	assert_int_equal(g.rt.ops->container_remove(g.rt.state, id), 0);

	/* OOM: dd's 64 MiB buffer in a 16 MiB cgroup (no swap here). */
	const char *oom[] = { "dd", "if=/dev/zero", "of=/dev/null", "bs=64M",
		"count=1", NULL };
	assert_int_equal(create("oom", oom, NULL, NULL, NULL, 0, 16 << 20, id,
			     log, sizeof(log)),
	    0);
	assert_int_equal(g.rt.ops->container_start(g.rt.state, id), 0);
	st = wait_exited(id, 10000);
	assert_int_equal(st.state, KB_RT_EXITED);
	assert_int_equal(st.exit_code, 137);
	if (strcmp(st.reason, "OOMKilled")) {
		char p[1024];
		snprintf(p, sizeof(p), "%s/runtime-runc/containers/%s/shim.log",
		    g_base, id);
		char *t = kbt_slurp(p);
		fprintf(stderr, "shim.log: %s\n", t ? t : "(none)");
		free(t);
	}
	assert_string_equal(st.reason, "OOMKilled");
	assert_int_equal(g.rt.ops->container_remove(g.rt.state, id), 0);

	/* A command that does not exist: ContainerCannotRun. */
	const char *bad[] = { "/no/such/cmd", NULL };
	assert_int_equal(create("bad", bad, NULL, NULL, NULL, 0, 0, id, log,
			     sizeof(log)),
	    0);
	g.rt.ops->container_start(g.rt.state, id);
	st = wait_exited(id, 10000);
	assert_int_equal(st.state, KB_RT_EXITED);
	assert_int_equal(st.exit_code, 128);
	assert_string_equal(st.reason, "ContainerCannotRun");
	assert_non_null(strstr(st.message, "no/such/cmd"));
	assert_int_equal(g.rt.ops->container_remove(g.rt.state, id), 0);
}

static void test_bad_input(void **state)
{
	SKIP_IF_NEEDED();
	char id[KB_RT_ID_MAX], log[1024];
	const struct kb_runtime_ops *o = g.rt.ops;
	struct kb_rt_container_spec cs = { .size = sizeof(cs),
		.sandbox_id = "nope",
		.name = "x",
		.image = g.image };
	assert_int_equal(o->container_create(g.rt.state, &cs, id, sizeof(id)),
	    KB_ENOTFOUND);
	cs.sandbox_id = "../../etc";
	assert_int_not_equal(o->container_create(g.rt.state, &cs, id,
				 sizeof(id)),
	    0);
	cs.sandbox_id = g.sb.id;
	cs.image = "no-such-image:1";
	assert_int_not_equal(o->container_create(g.rt.state, &cs, id,
				 sizeof(id)),
	    0);
	cs.image = NULL;
	assert_int_equal(o->container_create(g.rt.state, &cs, id, sizeof(id)),
	    KB_EINVAL);
	bool present = true;
	assert_int_equal(o->image_present(g.rt.state, "no-such-image:1",
			     &present),
	    0);
	assert_false(present);
	struct cobj co;
	const char *num[] = { NULL };
	cs.image = g.image;
	cs.container = cobj(&co, num, NULL);
	cs.log_path = log;
	snprintf(log, sizeof(log), "%s/logs/bad.log", g_base);
	/* command: [] drops the image's Cmd too: nothing to run */
	assert_int_equal(o->container_create(g.rt.state, &cs, id, sizeof(id)),
	    KB_EINVAL);
	cobj_free(&co);
	struct kb_rt_container_status st = { .size = sizeof(st) };
	assert_int_equal(o->container_status(g.rt.state, "0123abcd", &st),
	    KB_ENOTFOUND);
	assert_int_equal(o->container_status(g.rt.state, "../x", &st),
	    KB_ENOTFOUND);
	assert_int_equal(o->container_remove(g.rt.state, "0123abcd"), 0);
	assert_int_equal(o->container_stop(g.rt.state, "0123abcd", 15, 10),
	    KB_ENOTFOUND);
	assert_int_equal(o->sandbox_remove(g.rt.state, "0123abcd"), 0);
	const char *argv[] = { "true", NULL };
	int code;
	assert_int_equal(o->exec_sync(g.rt.state, "0123abcd", argv, 100, &code,
			     NULL, 0),
	    KB_ENOTFOUND);
	/* A config with an unknown key or a bad runc fails init, saying so. */
	struct rt r;
	assert_int_not_equal(rt_open(&r, "nope: 1\n"), 0);
	assert_non_null(strstr(r.host.why, "nope"));
	rt_close(&r);
	assert_int_not_equal(rt_open(&r, "runc: /no/runc\n"), 0);
	assert_non_null(strstr(r.host.why, "runc"));
	rt_close(&r);
}

/* The image's config as Kubernetes applies it: no command and no args run
 * Entrypoint + Cmd; args replace Cmd only; command drops both; the pod's
 * env overrides the image's; WorkingDir and User apply. */
static void test_image_config(void **state)
{
	SKIP_IF_NEEDED();
	if (!g.have_cfg_image) {
		fprintf(stderr,
		    "SKIP test_image_config: no kubus image build\n");
		skip();
	}
	char id[KB_RT_ID_MAX], log[1024];
	g_create_image = "rr-cfg:1";
	const char *args[] = { "echo args-only $IMGENV", NULL };
	const char *cmd[] = { "sh", "-c", "echo command $IMGENV $(pwd)", NULL };
	const char *env[] = { "IMGENV=from-pod", NULL };
	struct {
		const char *name;
		const char *const *cmd, *const *args, *const *env;
		const char *want;
	} cases[] = {
		{ "plain", NULL, NULL, NULL,
		    "image-cmd from-image 65534 /tmp" },
		{ "args", NULL, args, NULL, "args-only from-image" },
		{ "command", cmd, NULL, env, "command from-pod /tmp" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(create(cases[i].name, cases[i].cmd,
				     cases[i].args, cases[i].env, NULL, 0, 0,
				     id, log, sizeof(log)),
		    0);
		assert_int_equal(g.rt.ops->container_start(g.rt.state, id), 0);
		struct kb_rt_container_status st = wait_exited(id, 10000);
		assert_int_equal(st.state, KB_RT_EXITED);
		assert_int_equal(st.exit_code, 0);
		assert_string_equal(st.reason, "Completed");
		assert_true(strncmp(st.image_id, "sha256:", 7) == 0);
		char *text = kbt_slurp(log);
		assert_non_null(text);
		char want[256];
		snprintf(want, sizeof(want), "stdout F %s\n", cases[i].want);
		if (strstr(text, want) == NULL)
			fprintf(stderr, "%s: want \"%s\" in:\n%s\n",
			    cases[i].name, want, text);
		assert_non_null(strstr(text, want));
		free(text);
		assert_int_equal(g.rt.ops->container_remove(g.rt.state, id), 0);
	}
	g_create_image = NULL;
}

/* A pod the kubelet gave no network: the runtime's own namespace, with
 * loopback up, shared by the pod's containers, gone with the sandbox. And
 * a hostNetwork pod: the host's namespaces. */
static void test_own_netns(void **state)
{
	SKIP_IF_NEEDED();
	struct kb_rt_sandbox_spec spec = { .size = sizeof(spec),
		.uid = "0b7e6c2a-rr-own",
		.ns = "default",
		.name = "own" };
	struct kb_rt_sandbox sb = { .size = sizeof(sb) };
	const struct kb_runtime_ops *o = g.rt.ops;
	assert_int_equal(o->sandbox_create(g.rt.state, &spec, &sb), 0);
	assert_string_equal(sb.ip, "");
	char ids[2][KB_RT_ID_MAX], log[1024];
	int pids[2];
	const char *cmd[] = { "sleep", "60", NULL };
	for (int i = 0; i < 2; i++) {
		struct cobj co;
		snprintf(log, sizeof(log), "%s/logs/own%d.log", g_base, i);
		struct kb_rt_container_spec cs = { .size = sizeof(cs),
			.sandbox_id = sb.id,
			.pod_uid = "0b7e6c2a-rr-own",
			.name = i ? "b" : "a",
			.image = g.image,
			.container = cobj(&co, cmd, NULL),
			.log_path = log };
		assert_int_equal(o->container_create(g.rt.state, &cs, ids[i],
				     KB_RT_ID_MAX),
		    0);
		cobj_free(&co);
		assert_int_equal(o->container_start(g.rt.state, ids[i]), 0);
		pids[i] = status(&g.rt, ids[i]).pid;
		assert_true(pids[i] > 0);
	}
	char *a = sh_out("readlink /proc/%d/ns/net", pids[0]);
	char *b = sh_out("readlink /proc/%d/ns/net", pids[1]);
	char *h = sh_out("readlink /proc/self/ns/net");
	assert_string_equal(a, b);
	assert_string_not_equal(a, h);
	free(a);
	free(b);
	free(h);
	int code = -1;
	char out[512];
	const char *ip[] = { "sh", "-c", "ip -o link | wc -l; ip -o link",
		NULL };
	assert_int_equal(o->exec_sync(g.rt.state, ids[1], ip, 5000, &code, out,
			     sizeof(out)),
	    0);
	assert_int_equal(code, 0);
	assert_int_equal(atoi(out), 1);
	assert_non_null(strstr(out, "lo: <LOOPBACK,UP"));
	assert_int_equal(o->sandbox_remove(g.rt.state, sb.id), 0);

	/* hostNetwork: the host's network and UTS namespaces. */
	spec.host_network = true;
	spec.uid = "0b7e6c2a-rr-hostnet";
	assert_int_equal(o->sandbox_create(g.rt.state, &spec, &sb), 0);
	{
		struct cobj co;
		snprintf(log, sizeof(log), "%s/logs/hostnet.log", g_base);
		struct kb_rt_container_spec cs = { .size = sizeof(cs),
			.sandbox_id = sb.id,
			.pod_uid = "0b7e6c2a-rr-hostnet",
			.name = "h",
			.image = g.image,
			.container = cobj(&co, cmd, NULL),
			.log_path = log };
		assert_int_equal(o->container_create(g.rt.state, &cs, ids[0],
				     KB_RT_ID_MAX),
		    0);
		cobj_free(&co);
	}
	assert_int_equal(o->container_start(g.rt.state, ids[0]), 0);
	int hp = status(&g.rt, ids[0]).pid;
	char *x = sh_out("readlink /proc/%d/ns/net /proc/%d/ns/uts", hp, hp);
	char *y = sh_out("readlink /proc/self/ns/net /proc/self/ns/uts");
	assert_string_equal(x, y);
	free(x);
	free(y);
	assert_int_equal(o->sandbox_remove(g.rt.state, sb.id), 0);
	char *n = sh_out("ls -A %s/runtime-runc/netns | wc -l; "
			 "grep -c runtime-runc/netns /proc/self/mountinfo",
	    g_base);
	assert_string_equal(n, "0\n0\n");
	free(n);
}

static void test_cleanup(void **state)
{
	SKIP_IF_NEEDED();
	/* A running container in the sandbox: sandbox_remove kills it. */
	char id[KB_RT_ID_MAX], log[1024];
	const char *cmd[] = { "sleep", "60", NULL };
	assert_int_equal(create("left", cmd, NULL, NULL, NULL, 0, 32 << 20, id,
			     log, sizeof(log)),
	    0);
	assert_int_equal(g.rt.ops->container_start(g.rt.state, id), 0);
	assert_int_equal(status(&g.rt, id).state, KB_RT_RUNNING);
	assert_int_equal(g.rt.ops->sandbox_remove(g.rt.state, g.sb.id), 0);
	assert_int_equal(g.rt.ops->sandbox_remove(g.rt.state, g.sb.id), 0);
	struct kb_rt_container_status st = { .size = sizeof(st) };
	assert_int_equal(g.rt.ops->container_status(g.rt.state, id, &st),
	    KB_ENOTFOUND);
	char *out = sh_out("%s --root %s/runc list -q", g_runc, g_base);
	assert_non_null(out);
	assert_string_equal(out, "");
	free(out);
	out = sh_out("grep -c '%s' /proc/self/mountinfo", g_base);
	assert_int_equal(atoi(out), 0);
	free(out);
	out = sh_out("ls -A %s/runtime-runc/containers "
		     "%s/runtime-runc/sandboxes | grep -v : | grep -c . ",
	    g_base, g_base);
	assert_int_equal(atoi(out), 0);
	free(out);
	out = sh_out("ls -d /sys/fs/cgroup/*%s/0b7e6c2a-rr-test 2>/dev/null "
		     "| wc -l",
	    g.cgparent);
	assert_int_equal(atoi(out), 0);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_logs_exec_restart),
		cmocka_unit_test(test_term_with_grace),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_image_config),
		cmocka_unit_test(test_own_netns),
		cmocka_unit_test(test_cleanup),
	};
	return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
