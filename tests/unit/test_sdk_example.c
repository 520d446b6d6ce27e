/* tests/unit/test_sdk_example.c — sdk/examples/hello, built out of tree.
 *
 * Installs the SDK from the build dir into a temporary prefix (the `sdk`
 * install component), copies the example somewhere the source tree is not,
 * builds it with its Makefile through `pkg-config kubus-sdk` only, checks
 * that every SDK header the compiler read came from the prefix, then loads
 * the plugin by path into a real host and calls it over the bus.
 *
 * Needs only the build dir ($KUBUS_BUILD), the sources ($KUBUS_SRC) and the
 * Debian packages ./build.sh installs (cmake, make, cc, pkg-config).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
/* Only for the fake host's hand-made requests (kb_msg_new); the plugin
 * itself sees nothing but the installed headers. */
#include "internal.h"

struct example {
	char *tmp;    /* everything below lives here */
	char *prefix; /* the SDK installed: tmp/prefix */
	char *pcdir;  /* prefix/LIBDIR/pkgconfig */
	char *dir;    /* the example's copy: tmp/hello */
	char *so;     /* dir/kubus-hello.so */
};

static struct example ex;

static char *xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return s;
}

/* Run a command; fail the test with its output if it does not exit 0.
 * Returns the output (malloc'd). */
static char *run_ok(const char *cmd)
{
	char *out = NULL;
	int rc = kbt_run(cmd, &out);
	if (rc != 0)
		fail_msg("`%s` exited %d:\n%s", cmd, rc, out ? out : "");
	return out;
}

/* The absolute path of a directory, with a '/' at its end so that it
 * matches only what is inside it. */
static char *abs_dir(const char *p)
{
	char buf[PATH_MAX];
	if (realpath(p, buf) == NULL)
		fail_msg("realpath(%s) failed", p);
	return xasprintf("%s/", buf);
}

/* CMAKE_INSTALL_LIBDIR as the build dir was configured ("lib",
 * "lib/x86_64-linux-gnu", …); NULL when the cache does not say. */
static char *cache_libdir(const char *build)
{
	char *path = xasprintf("%s/CMakeCache.txt", build);
	FILE *f = fopen(path, "r");
	free(path);
	if (f == NULL)
		return NULL;
	char line[4096], *libdir = NULL;
	while (libdir == NULL && fgets(line, sizeof(line), f)) {
		static const char key[] = "CMAKE_INSTALL_LIBDIR:";
		if (strncmp(line, key, sizeof(key) - 1) != 0)
			continue;
		char *eq = strchr(line, '=');
		if (eq) {
			eq[1 + strcspn(eq + 1, "\r\n")] = '\0';
			libdir = strdup(eq + 1);
		}
	}
	fclose(f);
	return libdir;
}

/* Where `cmake --install` put kubus-sdk.pc: GNUInstallDirs' libdir from the
 * cache, else the usual candidates. */
static char *find_pcdir(const char *prefix, const char *build)
{
	char *libdir = cache_libdir(build);
	const char *cands[] = { libdir, "lib", "lib64",
		"lib/x86_64-linux-gnu" };
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		if (cands[i] == NULL || cands[i][0] == '/')
			continue;
		char *dir = xasprintf("%s/%s/pkgconfig", prefix, cands[i]);
		char *pc = xasprintf("%s/kubus-sdk.pc", dir);
		bool ok = access(pc, R_OK) == 0;
		free(pc);
		if (ok) {
			free(libdir);
			return dir;
		}
		free(dir);
	}
	fail_msg("no kubus-sdk.pc under %s (libdir %s)", prefix,
	    libdir ? libdir : "unknown");
	return NULL;
}

/* --- setup: install, copy, build ----------------------------------------------------- */

static int setup(void **state)
{
	char *build = abs_dir(kbt_build_dir());
	char *src = abs_dir(kbt_src_dir());
	ex.tmp = kbt_mkdtemp("sdk-example");
	assert_non_null(ex.tmp);
	ex.prefix = xasprintf("%s/prefix", ex.tmp);
	ex.dir = xasprintf("%s/hello", ex.tmp);
	ex.so = xasprintf("%s/kubus-hello.so", ex.dir);

	/* Only the SDK component: a build dir where some plugin did not build
	 * still installs the SDK. */
	char *cmd =
	    xasprintf("cmake --install '%s.' --prefix '%s' --component sdk",
		build, ex.prefix);
	free(run_ok(cmd));
	free(cmd);
	ex.pcdir = find_pcdir(ex.prefix, build);

	/* The installed .pc names the prefix it was installed to. */
	cmd =
	    xasprintf("PKG_CONFIG_PATH='%s' pkg-config --cflags --libs kubus-sdk",
		ex.pcdir);
	char *flags = run_ok(cmd);
	free(cmd);
	char *want = xasprintf("-I%s/include", ex.prefix);
	if (strstr(flags, want) == NULL)
		fail_msg("pkg-config --cflags gave `%s`, want %s", flags, want);
	free(want);
	assert_non_null(strstr(flags, "-lkubus-sdk"));
	assert_null(strstr(flags, src));
	assert_null(strstr(flags, build));
	free(flags);

	/* Out of tree: a copy of the example and nothing else. */
	cmd = xasprintf("cp -R '%ssdk/examples/hello' '%s'", src, ex.dir);
	free(run_ok(cmd));
	free(cmd);
	cmd = xasprintf("cd '%s' && rm -f kubus-hello.so *.o *.d", ex.dir);
	free(run_ok(cmd));
	free(cmd);

	/* The Makefile as a user runs it, plus -Werror and a dependency file
	 * that lists every header the compiler read. MAKEFLAGS from an
	 * enclosing make must not leak in. */
	cmd = xasprintf(
	    "cd '%s' && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
	    "make PKG_CONFIG_PATH='%s' CFLAGS='-O2 -g -Wall -Wextra -Werror -MD'",
	    ex.dir, ex.pcdir);
	char *out = run_ok(cmd);
	free(cmd);
	print_message("%s", out);
	want = xasprintf("-I%s/include", ex.prefix);
	if (strstr(out, want) == NULL)
		fail_msg("the compile did not use the installed headers:\n%s",
		    out);
	free(want);
	if (strstr(out, src) != NULL || strstr(out, build) != NULL)
		fail_msg("the compile used the source or build tree:\n%s", out);
	free(out);
	assert_int_equal(access(ex.so, R_OK), 0);

	free(build);
	free(src);
	return 0;
}

static int teardown(void **state)
{
	kbt_rmrf(ex.tmp);
	free(ex.tmp);
	free(ex.prefix);
	free(ex.pcdir);
	free(ex.dir);
	free(ex.so);
	memset(&ex, 0, sizeof(ex));
	return 0;
}

/* --- the build ------------------------------------------------------------------------- */

/* Every SDK header the compiler read is the installed copy. */
static void test_headers_from_prefix(void **state)
{
	char *src = abs_dir(kbt_src_dir());
	char *path = xasprintf("%s/kubus-hello.d", ex.dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		fail_msg("no dependency file %s", path);
	char *inc = xasprintf("%s/include/kubus/", ex.prefix);
	char tok[4096];
	int sdk_headers = 0;
	while (fscanf(f, "%4095s", tok) == 1) {
		if (strstr(tok, src) == tok)
			fail_msg("read %s from the source tree", tok);
		if (strstr(tok, "/kubus/") == NULL || strstr(tok, ".h") == NULL)
			continue;
		if (strncmp(tok, inc, strlen(inc)) != 0)
			fail_msg("read SDK header %s, not from %s", tok, inc);
		sdk_headers++;
	}
	fclose(f);
	/* kubus.h and the headers it includes. */
	assert_true(sdk_headers >= 7);
	free(inc);
	free(path);
	free(src);
}

/* The descriptor is the only symbol the plugin exports. */
static void test_exports_only_descriptor(void **state)
{
	char *cmd = xasprintf("nm -D --defined-only '%s'", ex.so);
	char *out = run_ok(cmd);
	free(cmd);
	int n = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char type = 0, name[256] = "";
		if (sscanf(line, "%*s %c %255s", &type, name) != 2)
			continue;
		if (type == 'T' || type == 'D' || type == 'B' || type == 'R')
			n++;
		if ((type == 'T' || type == 'D') &&
		    strcmp(name, "kb_plugin_describe"))
			fail_msg("exports %s", name);
	}
	assert_int_equal(n, 1);
	free(out);
}

/* `kubus plugins` finds it by its file name and reads its descriptor. */
static void test_listed_by_kubus_plugins(void **state)
{
	char *cmd = xasprintf("'%s/kubus' plugins --path '%s'", kbt_build_dir(),
	    ex.dir);
	char *out = run_ok(cmd);
	free(cmd);
	char name[64], kind[64], version[64], abi[16], file[PATH_MAX];
	const char *line = strstr(out, "\nhello ");
	if (line == NULL ||
	    sscanf(line + 1, "%63s %63s %63s %15s %4095s", name, kind, version,
		abi, file) != 5)
		fail_msg("hello not listed:\n%s", out);
	assert_string_equal(kind, "service");
	assert_string_equal(version, "1.0.0");
	assert_string_equal(abi, "1.0");
	assert_string_equal(file, ex.so);
	free(out);
}

/* --- loaded by a host -------------------------------------------------------------------- */

static const char *const groups[] = { "kubus:plugins" };

static struct kbt_host *start_hello(const char *config, char *err,
    size_t errlen)
{
	char *yaml = xasprintf("plugins:\n"
			       "  - name: hello\n"
			       "    use: %s\n"
			       "%s",
	    ex.so, config);
	struct kbt_host *h = kbt_host_start(yaml, err, errlen);
	free(yaml);
	return h;
}

static void expect_greeting(kb_ctx *c, const char *name, const char *want)
{
	kb_msg *rep = NULL;
	int rc = kb_call(c, "hello", "greet", kb_mp_body("{s:s}", "name", name),
	    5000, &rep);
	if (rc != 0) {
		const char *msg = "";
		if (rep)
			kb_msg_err(rep, &msg);
		fail_msg("greet: %s: %s", kb_strerror(rc), msg);
	}
	assert_non_null(rep);
	assert_string_equal(kb_msg_src(rep), "hello");
	assert_string_equal(kb_msg_principal(rep), "plugin:hello");
	char *message = kb_mp_strdup(kb_msg_body(rep), "message");
	assert_non_null(message);
	assert_string_equal(message, want);
	free(message);
	kb_msg_free(rep);
}

static void test_greet_over_the_bus(void **state)
{
	char err[1024];
	struct kbt_host *h =
	    start_hello("    config: {greeting: Hi}\n", err, sizeof(err));
	if (h == NULL)
		fail_msg("host did not start: %s", err);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);
	assert_non_null(c);

	expect_greeting(c, "kubus", "Hi, kubus!");

	/* What was expected and what came. */
	kb_msg *rep = NULL;
	int rc = kb_call(c, "hello", "greet", kb_mp_body("{s:i}", "name", 7),
	    5000, &rep);
	assert_int_equal(rc, KB_EINVAL);
	assert_non_null(rep);
	const char *msg = "";
	assert_int_equal(kb_msg_err(rep, &msg), KB_EINVAL);
	assert_non_null(strstr(msg, "{name: string}"));
	kb_msg_free(rep);

	rc = kb_call(c, "hello", "shout", NULL, 5000, &rep);
	assert_int_equal(rc, KB_EBADREQUEST);
	assert_non_null(rep);
	kb_msg_err(rep, &msg);
	assert_non_null(strstr(msg, "shout"));
	kb_msg_free(rep);

	kbt_host_stop(h);
}

static void test_default_greeting(void **state)
{
	char err[1024];
	struct kbt_host *h = start_hello("", err, sizeof(err));
	if (h == NULL)
		fail_msg("host did not start: %s", err);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);
	assert_non_null(c);
	expect_greeting(c, "world", "hello, world!");
	kbt_host_stop(h);
}

/* A config mistake fails the host with the option table's message. */
static void test_config_error(void **state)
{
	char err[1024] = "";
	struct kbt_host *h =
	    start_hello("    config: {greting: Hi}\n", err, sizeof(err));
	if (h != NULL) {
		kbt_host_stop(h);
		fail_msg("host started with an unknown key");
	}
	assert_non_null(strstr(err, "plugin \"hello\""));
	assert_non_null(strstr(err, ex.so));
	assert_non_null(
	    strstr(err, "unknown key `greting` in plugins[0].config (hello)"));
}

/* --- a fake host ------------------------------------------------------------------------ */

/* What sdk/README.md describes: a table of the host's functions filled in by
 * the test, so a plugin's lifecycle and handlers run without a host. */
struct fake {
	kb_ctx ctx; /* first: the plugin's kb_ctx * is a struct fake * */
	const char *instance;
	char log[2048];
	char fail[512];
	char service[128];
	kb_serve_fn serve_fn;
	void *serve_arg;
	int reply_code;
	char reply_msg[512];
	kb_body *reply; /* the answer's body, ours */
	int replies;
};

static struct fake *fake_of(kb_ctx *ctx)
{
	return (struct fake *)ctx;
}

static const char *fake_instance(kb_ctx *ctx)
{
	return fake_of(ctx)->instance;
}

static const char *fake_host_name(kb_ctx *ctx)
{
	return "fake";
}

static const char *fake_data_dir(kb_ctx *ctx)
{
	return "/nonexistent";
}

static int fake_log_enabled(kb_ctx *ctx, int level)
{
	return level <= KB_LOG_DEBUG;
}

static void fake_log(kb_ctx *ctx, int level, const char *msg, const char *kv)
{
	struct fake *f = fake_of(ctx);
	size_t n = strlen(f->log);
	snprintf(f->log + n, sizeof(f->log) - n, "%d %s %s\n", level, msg,
	    kv ? kv : "");
}

static int fake_serve(kb_ctx *ctx, const char *service, kb_serve_fn fn,
    void *arg)
{
	struct fake *f = fake_of(ctx);
	if (f->serve_fn)
		return KB_EEXIST; /* enough for a plugin with one service */
	snprintf(f->service, sizeof(f->service), "%s", service);
	f->serve_fn = fn;
	f->serve_arg = arg;
	return 0;
}

/* As the real host: takes `body`, frees `req`, always. */
static int fake_reply(kb_msg *req, kb_body *body, int code, const char *message)
{
	struct fake *f = req->route;
	kb_body_unref(f->reply);
	f->reply = body ? body : kb_body_nil();
	f->reply_code = code;
	snprintf(f->reply_msg, sizeof(f->reply_msg), "%s",
	    message ? message : "");
	f->replies++;
	kb_msg_free(req);
	return 0;
}

static void fake_fail(kb_ctx *ctx, const char *reason)
{
	snprintf(fake_of(ctx)->fail, sizeof(fake_of(ctx)->fail), "%s", reason);
}

static const struct kb_host_api fake_api = {
	.size = sizeof(struct kb_host_api),
	.abi_major = KB_ABI_MAJOR,
	.abi_minor = KB_ABI_MINOR,
	.instance = fake_instance,
	.host_name = fake_host_name,
	.data_dir = fake_data_dir,
	.log = fake_log,
	.log_enabled = fake_log_enabled,
	.serve = fake_serve,
	.reply = fake_reply,
	.fail = fake_fail,
	/* request, subscribe, publish, ext_*: hello never calls them. */
};

/* A host from before `fail` existed: its table ends just before it. */
static const struct kb_host_api old_api = {
	.size = offsetof(struct kb_host_api, fail),
	.abi_major = KB_ABI_MAJOR,
	.abi_minor = KB_ABI_MINOR,
	.instance = fake_instance,
	.log = fake_log,
	.log_enabled = fake_log_enabled,
	.serve = fake_serve,
	.reply = fake_reply,
	.fail = fake_fail, /* beyond .size: must not be called */
};

static kb_conf *yaml(const char *text)
{
	char err[256];
	kb_conf *c = kb_conf_parse_yaml(text, strlen(text), "fake.yaml", err,
	    sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

/* Deliver a request to the captured handler. */
static void fake_call(struct fake *f, const char *op, kb_body *body)
{
	kb_msg *m = kb_msg_new(KB_T_REQ, NULL, f->service, op, body);
	assert_non_null(m);
	m->api = f->ctx.api;
	m->route = f;
	f->serve_fn(f->serve_arg, m);
}

static void test_fake_host(void **state)
{
	void *dl = dlopen(ex.so, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL)
		fail_msg("dlopen: %s", dlerror());
	kb_plugin_describe_fn describe;
	*(void **)&describe = dlsym(dl, KB_PLUGIN_SYMBOL);
	assert_non_null(describe);
	const struct kb_plugin *p = describe();
	assert_int_equal(p->hdr.magic, KB_PLUGIN_MAGIC);
	assert_int_equal(p->hdr.abi_major, KB_ABI_MAJOR);
	assert_int_equal(p->kind, KB_KIND_SERVICE);

	struct fake f = { .ctx.api = &fake_api, .instance = "hi" };
	void *st = NULL;
	kb_conf *conf = yaml("greeting: Hey\n");
	assert_int_equal(p->init(&f.ctx, conf, &st), 0);
	kb_conf_free(conf); /* borrowed only until init returned */
	assert_string_equal(f.service, "hello");
	assert_int_equal(p->start(&f.ctx, st), 0);
	assert_non_null(strstr(f.log, "hello is ready"));
	assert_non_null(strstr(f.log, "greeting=\"Hey\""));

	fake_call(&f, "greet", kb_mp_body("{s:s}", "name", "fake"));
	assert_int_equal(f.replies, 1);
	assert_int_equal(f.reply_code, KB_OK);
	assert_true(kb_mp_streq(kb_body_obj(f.reply), "message", "Hey, fake!"));

	fake_call(&f, "greet", kb_mp_body("{s:b}", "name", 1));
	assert_int_equal(f.reply_code, KB_EINVAL);
	assert_non_null(strstr(f.reply_msg, "got {\"name\"=>true}"));
	fake_call(&f, "wave", NULL);
	assert_int_equal(f.reply_code, KB_EBADREQUEST);
	assert_int_equal(f.replies, 3);

	p->stop(&f.ctx, st);
	p->fini(st);
	kb_body_unref(f.reply);

	/* A failed init says why through `fail` and frees what it made (ASan
	 * checks the second half). */
	struct fake g = { .ctx.api = &fake_api, .instance = "hi" };
	conf = yaml("greting: Hey\n");
	st = NULL;
	assert_int_equal(p->init(&g.ctx, conf, &st), KB_EINVAL);
	kb_conf_free(conf);
	assert_null(g.serve_fn);
	assert_string_equal(g.fail,
	    "fake.yaml:1:1: unknown key `greting` in the top level (hi)");

	/* On a host whose table ends before `fail`, kb_fail() skips it. */
	struct fake o = { .ctx.api = &old_api, .instance = "old" };
	assert_false(KB_HOST_HAS(&o.ctx, fail));
	assert_true(KB_HOST_HAS(&o.ctx, reply));
	conf = yaml("greting: Hey\n");
	assert_int_equal(p->init(&o.ctx, conf, &st), KB_EINVAL);
	kb_conf_free(conf);
	assert_string_equal(o.fail, "");

	dlclose(dl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_from_prefix),
		cmocka_unit_test(test_exports_only_descriptor),
		cmocka_unit_test(test_listed_by_kubus_plugins),
		cmocka_unit_test(test_greet_over_the_bus),
		cmocka_unit_test(test_default_greeting),
		cmocka_unit_test(test_config_error),
		cmocka_unit_test(test_fake_host),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
