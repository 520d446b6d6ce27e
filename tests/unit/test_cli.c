/* tests/unit/test_cli.c — the `kubus` command line: version, help,
 * plugins, token create|list|revoke, run --set and --log-level, and the
 * exit status of every misuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

struct fx {
	char *dir;
	char cfg[512];
	pid_t pid;             /* a background kubus */
	struct kbt_host *join; /* an in-process host joined to it */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = kbt_mkdtemp("cli");
	assert_non_null(f->dir);
	snprintf(f->cfg, sizeof(f->cfg), "%s/c.yaml", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	kbt_host_stop(f->join);
	kbt_kill(f->pid);
	kbt_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/* Run `kubus ARGS` (a shell fragment); exit status, output in *out. */
static int kubus(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int kubus(char **out, const char *fmt, ...)
{
	char args[4096], cmd[5120];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "timeout -s KILL 20 '%s/kubus' %s",
	    kbt_build_dir(), args);
	int rc = kbt_run(cmd, out);
	assert_non_null(*out);
	return rc;
}

#define expect_status(want, out, ...)                                          \
	do {                                                                   \
		int rc_ = kubus(&(out), __VA_ARGS__);                          \
		if (rc_ != (want))                                             \
			fail_msg("kubus exit status %d, want %d; output:\n%s", \
			    rc_, (want), (out));                               \
	} while (0)

#define expect_in(hay, needle)                                                 \
	do {                                                                   \
		if (strstr((hay), (needle)) == NULL)                           \
			fail_msg("`%s` not in:\n%s", (needle), (hay));         \
	} while (0)

/* The line of `out` that contains `needle` (malloc'd), or NULL. */
static char *line_with(const char *out, const char *needle)
{
	const char *p = strstr(out, needle);
	if (p == NULL)
		return NULL;
	while (p > out && p[-1] != '\n')
		p--;
	const char *nl = strchr(p, '\n');
	return strndup(p, nl ? (size_t)(nl - p) : strlen(p));
}

/* --- version and help ---------------------------------------------------------- */

static void test_version(void **state)
{
	char *out;
	expect_status(0, out, "version");
	char want[128];
	snprintf(want, sizeof(want), "kubus %s (plugin ABI %d.%d)\n",
	    KUBUS_VERSION, KB_ABI_MAJOR, KB_ABI_MINOR);
	assert_string_equal(out, want);
	free(out);
	expect_status(0, out, "--version");
	assert_string_equal(out, want);
	free(out);
}

static void test_help(void **state)
{
	char *out;
	expect_status(0, out, "--help");
	expect_in(out, "usage: kubus COMMAND");
	const char *const cmds[] = { "run -c FILE", "plugins",
		"token create|list|revoke", "version" };
	for (size_t i = 0; i < 4; i++)
		expect_in(out, cmds[i]);
	free(out);
	expect_status(0, out, "help");
	expect_in(out, "usage: kubus COMMAND");
	free(out);

	expect_status(0, out, "run --help");
	expect_in(out, "usage: kubus run -c FILE");
	const char *const opts[] = { "--config", "--data-dir", "--set",
		"--plugin-path", "--log-level" };
	for (size_t i = 0; i < 5; i++)
		expect_in(out, opts[i]);
	free(out);
	/* --help wins over anything else on the line, even without -c */
	expect_status(0, out, "run -c /nonexistent.yaml --help");
	expect_in(out, "usage: kubus run");
	free(out);

	expect_status(0, out, "plugins --help");
	expect_in(out, "usage: kubus plugins");
	free(out);
	expect_status(0, out, "token --help");
	expect_in(out, "usage: kubus token create");
	expect_in(out, "token,user,uid");
	free(out);
}

static void test_misuse_exit_2(void **state)
{
	char *out;
	expect_status(2, out, "frobnicate");
	expect_in(out, "kubus: unknown command `frobnicate`");
	expect_in(out, "usage: kubus COMMAND"); /* and the usage, to stderr */
	free(out);
	expect_status(2, out, "%s", "");
	expect_in(out, "usage: kubus COMMAND");
	free(out);
	/* run without a config */
	expect_status(2, out, "run");
	expect_in(out, "usage: kubus run");
	free(out);
	expect_status(2, out, "run -c x.yaml --no-such-flag");
	free(out);
	expect_status(2, out, "run -c x.yaml --log-level loud");
	expect_in(out,
	    "--log-level loud: expected error, warn, info, debug or trace");
	free(out);
	expect_status(2, out, "plugins --bogus");
	expect_in(out, "plugins: unknown argument --bogus");
	free(out);
	expect_status(2, out, "token");
	expect_in(out, "usage: kubus token");
	free(out);
	expect_status(2, out, "token mint --file /tmp/x");
	expect_in(out, "unknown subcommand mint");
	free(out);
	expect_status(2, out, "token create --file /tmp/x");
	expect_in(out, "--user is required");
	free(out);
}

/* --- plugins --------------------------------------------------------------------- */

static void test_plugins(void **state)
{
	char *out, *l;
	expect_status(0, out, "plugins --path '%s/tests/plugins'",
	    kbt_build_dir());
	expect_in(out, "NAME");
	expect_in(out, "KIND");
	expect_in(out, "ABI");
	/* echo: name, kind, version, ABI, file — in that order, by column */
	l = line_with(out, "kubus-echo.so");
	assert_non_null(l);
	char name[64], kind[64], ver[64], abi[64], file[1024];
	assert_int_equal(sscanf(l, "%63s %63s %63s %63s %1023s", name, kind,
			     ver, abi, file),
	    5);
	assert_string_equal(name, "echo");
	assert_string_equal(kind, "service");
	assert_string_equal(ver, "1.0");
	assert_string_equal(abi, "1.0");
	free(l);
	/* an extension shows its kind */
	l = line_with(out, "kubus-ext_policy.so");
	assert_non_null(l);
	assert_int_equal(sscanf(l, "%63s %63s", name, kind), 2);
	assert_string_equal(name, "ext-policy");
	assert_string_equal(kind, "sched-policy");
	free(l);
	/* invalid ones, each with its reason */
	static const struct {
		const char *file, *why;
	} bad[] = {
		{ "kubus-bad_abi.so",
		    "ABI 2.1, host 1.0: major version differs" },
		{ "kubus-new_minor.so", "the plugin needs a newer host" },
		{ "kubus-bad_magic.so", "bad magic" },
		{ "kubus-bad_kind.so", "unknown kind 99" },
		{ "kubus-no_descriptor.so", "no descriptor" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		l = line_with(out, bad[i].file);
		if (l == NULL)
			fail_msg("%s not listed:\n%s", bad[i].file, out);
		expect_in(l, "invalid");
		expect_in(l, bad[i].why);
		free(l);
	}
	free(out);

	/* KUBUS_PLUGIN_PATH is the default path */
	char cmd[1200];
	snprintf(cmd, sizeof(cmd),
	    "KUBUS_PLUGIN_PATH='%s/tests/plugins' '%s/kubus' plugins",
	    kbt_build_dir(), kbt_build_dir());
	assert_int_equal(kbt_run(cmd, &out), 0);
	expect_in(out, "kubus-crash.so");
	free(out);

	/* an empty directory: said so, still success */
	struct fx *f = *state;
	expect_status(0, out, "plugins --path '%s'", f->dir);
	expect_in(out, "kubus: no plugins on");
	free(out);
}

/* --- tokens ---------------------------------------------------------------------- */

static bool is_token(const char *s)
{
	size_t n = strlen(s);
	if (n < 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static void test_tokens(void **state)
{
	struct fx *f = *state;
	char file[1024], *out;
	snprintf(file, sizeof(file), "%s/sub/tokens.csv", f->dir);
	char sub[600];
	snprintf(sub, sizeof(sub), "%s/sub", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);

	expect_status(0, out,
	    "token create --user alice --groups a,b --file '%s'", file);
	/* stdout is the token and nothing else */
	char tok[256];
	snprintf(tok, sizeof(tok), "%s", out);
	tok[strcspn(tok, "\n")] = '\0';
	if (!is_token(tok))
		fail_msg("not a token: `%s`", out);
	assert_int_equal(strlen(out), strlen(tok) + 1);
	free(out);
	struct stat st;
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* the file has kube-apiserver's shape */
	char *text = kbt_slurp(file);
	assert_non_null(text);
	char want[512];
	snprintf(want, sizeof(want), "%s,alice,alice,\"a,b\"", tok);
	expect_in(text, want);
	free(text);

	expect_status(0, out, "token create --user bob --uid 1001 --file '%s'",
	    file);
	char tok2[256];
	snprintf(tok2, sizeof(tok2), "%s", out);
	tok2[strcspn(tok2, "\n")] = '\0';
	assert_true(is_token(tok2));
	assert_string_not_equal(tok, tok2);
	free(out);

	expect_status(0, out, "token list --file '%s'", file);
	char *l = line_with(out, "alice");
	assert_non_null(l);
	expect_in(l, "a,b");
	free(l);
	l = line_with(out, "bob");
	assert_non_null(l);
	expect_in(l, "1001");
	free(l);
	/* list never shows a whole token */
	assert_null(strstr(out, tok));
	assert_null(strstr(out, tok2));
	free(out);

	/* revoke by user */
	expect_status(0, out, "token revoke alice --file '%s'", file);
	free(out);
	expect_status(0, out, "token list --file '%s'", file);
	assert_null(strstr(out, "alice"));
	expect_in(out, "bob");
	free(out);
	text = kbt_slurp(file);
	assert_null(strstr(text, tok));
	free(text);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* revoke by token */
	expect_status(0, out, "token revoke '%s' --file '%s'", tok2, file);
	free(out);
	expect_status(0, out, "token list --file '%s'", file);
	assert_null(strstr(out, "bob"));
	free(out);
	/* nothing left to revoke: an error, exit 1 */
	expect_status(1, out, "token revoke alice --file '%s'", file);
	expect_in(out, "kubus: token revoke:");
	free(out);
	expect_status(2, out, "token revoke --file '%s'", file);
	free(out);

	/* --data-dir puts the file at DATA_DIR/tokens.csv */
	expect_status(0, out, "token create --user carol --data-dir '%s'", sub);
	free(out);
	snprintf(file, sizeof(file), "%s/tokens.csv", sub);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* --- run --set ------------------------------------------------------------------- */

/* Start `kubus run` on f->cfg in the background with extra args; wait until
 * it runs. The token file gets an admin token first; it is returned. */
static char *start_kubus(struct fx *f, const char *yaml, char *const extra[])
{
	char data[600], log[600], kubus_path[600], path[600], *out;
	snprintf(data, sizeof(data), "%s/data", f->dir);
	snprintf(log, sizeof(log), "%s/kubus.log", f->dir);
	snprintf(kubus_path, sizeof(kubus_path), "%s/kubus", kbt_build_dir());
	snprintf(path, sizeof(path), "%s/tests/plugins", kbt_build_dir());
	assert_int_equal(mkdir(data, 0700), 0);
	write_file(f->cfg, yaml);
	expect_status(0, out,
	    "token create --user admin --groups system:masters --file '%s/tokens.csv'",
	    data);
	out[strcspn(out, "\n")] = '\0';
	char *argv[32] = { kubus_path, "run", "-c", f->cfg, "--plugin-path",
		path, "--data-dir", data };
	size_t a = 8;
	for (size_t i = 0; extra && extra[i] && a < 31; i++)
		argv[a++] = extra[i];
	argv[a] = NULL;
	f->pid = kbt_spawn(argv, log);
	assert_true(f->pid > 0);
	char *text = kbt_wait_file(log, "msg=\"host running\"", 15000);
	if (text == NULL) {
		text = kbt_slurp(log);
		fail_msg("kubus did not come up:\n%s",
		    text ? text : "(no log)");
	}
	free(text);
	return out;
}

static kb_ctx *join(struct fx *f, const char *token)
{
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "bus:\n"
	    "  join: \"ipc://%s/data/kubus.sock\"\n"
	    "  join_token: \"%s\"\n"
	    "  listen: []\n",
	    f->dir, token);
	f->join = kbt_host_start(yaml, err, sizeof(err));
	if (f->join == NULL)
		fail_msg("cannot join: %s", err);
	static const char *const groups[] = { "kubus:plugins" };
	kb_ctx *c = kbt_client(f->join, "tester", "plugin:tester", groups, 1);
	assert_non_null(c);
	return c;
}

static void stop_kubus(struct fx *f)
{
	kbt_host_stop(f->join);
	f->join = NULL;
	assert_int_equal(kill(f->pid, SIGTERM), 0);
	int st = kbt_wait_pid(f->pid, 5000);
	assert_int_not_equal(st, -1);
	f->pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* --set echo.service=other: echo serves `other` instead of `echo`, as seen
 * by a request over the bus. */
static void test_set_plugin_key(void **state)
{
	struct fx *f = *state;
	char *const extra[] = { "--set", "echo.service=other", NULL };
	char *token = start_kubus(f,
	    "bus:\n"
	    "  listen: [ipc://kubus.sock]\n"
	    "plugins:\n"
	    "  - use: echo\n",
	    extra);
	kb_ctx *c = join(f, token);
	free(token);
	kb_msg *rep = NULL;
	int rc = kb_call(c, "other", "echo",
	    kb_mp_body("{s:s}", "hello", "there"), 5000, &rep);
	if (rc != 0)
		fail_msg("call to `other`: %s", kb_strerror(rc));
	assert_true(kb_mp_streq(kb_msg_body(rep), "hello", "there"));
	kb_msg_free(rep);
	/* the core stamped the joined peer's principal, the token's user */
	rc = kb_call(c, "other", "whoami", NULL, 5000, &rep);
	assert_int_equal(rc, 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "principal", "admin"));
	kb_msg_free(rep);
	/* and nobody serves the default name any more */
	rep = NULL;
	rc = kb_call(c, "echo", "echo", NULL, 5000, &rep);
	assert_int_equal(rc, KB_EUNAVAILABLE);
	kb_msg_free(rep);
	stop_kubus(f);
}

/* A config that fails in init, so `kubus run` ends by itself: what it
 * prints shows which --set / --log-level took effect. */
static const char failing_yaml[] = "host:\n"
				   "  log_level: info\n"
				   "bus:\n"
				   "  listen: [ipc://kubus.sock]\n"
				   "plugins:\n"
				   "  - use: fail_init\n";

static int run_failing(struct fx *f, const char *args, char **out)
{
	write_file(f->cfg, failing_yaml);
	return kubus(out,
	    "run -c '%s' --plugin-path '%s/tests/plugins' --data-dir '%s/data' %s",
	    f->cfg, kbt_build_dir(), f->dir, args);
}

static void test_set_errors_and_host_keys(void **state)
{
	struct fx *f = *state;
	char *out;
	/* no such instance */
	write_file(f->cfg, "plugins:\n  - use: echo\n");
	expect_status(1, out,
	    "run -c '%s' --plugin-path '%s/tests/plugins' --data-dir '%s/data' --set nosuch.key=1",
	    f->cfg, kbt_build_dir(), f->dir);
	expect_in(out,
	    "kubus: --set nosuch.key=1: no plugin instance named `nosuch`");
	assert_null(strstr(out, "plugin started"));
	free(out);
	/* not KEY=VALUE */
	expect_status(1, out,
	    "run -c '%s' --plugin-path '%s/tests/plugins' --data-dir '%s/data' --set echo",
	    f->cfg, kbt_build_dir(), f->dir);
	expect_in(out, "--set echo: expected INSTANCE.KEY=VALUE");
	free(out);
	/* a key the plugin does not have: its own option table says so */
	expect_status(1, out,
	    "run -c '%s' --plugin-path '%s/tests/plugins' --data-dir '%s/data' --set echo.nokey=1",
	    f->cfg, kbt_build_dir(), f->dir);
	expect_in(out, "kubus: plugin \"echo\" (");
	expect_in(out, "unknown key `nokey`");
	free(out);
	/* a core key that does not exist */
	expect_status(1, out,
	    "run -c '%s' --plugin-path '%s/tests/plugins' --data-dir '%s/data' --set host.nokey=1",
	    f->cfg, kbt_build_dir(), f->dir);
	expect_in(out, "unknown key `nokey`");
	free(out);

	/* host.log_level reaches the core: error hides info lines … */
	int rc = run_failing(f, "", &out);
	assert_int_equal(rc, 1);
	expect_in(out, "level=info");
	free(out);
	rc = run_failing(f, "--set host.log_level=error", &out);
	assert_int_equal(rc, 1);
	assert_null(strstr(out, "level=info"));
	expect_in(out, "level=error plugin=fail_init msg=\"refusing to init");
	expect_in(out, "kubus: plugin \"fail_init\"");
	free(out);
	/* … debug is accepted and shows at least what info shows */
	rc = run_failing(f, "--set host.log_level=debug", &out);
	assert_int_equal(rc, 1);
	expect_in(out, "level=info plugin=kubus msg=\"bus listening\"");
	expect_in(out, "kubus: plugin \"fail_init\"");
	assert_null(strstr(out, "log_level"));
	free(out);
	/* … and a bad level is refused with the key's name */
	rc = run_failing(f, "--set host.log_level=loud", &out);
	assert_int_equal(rc, 1);
	expect_in(out,
	    "kubus: host.log_level `loud`: expected error, warn, info, debug or trace");
	free(out);
	/* --log-level on the command line wins over the config file */
	rc = run_failing(f, "--log-level error", &out);
	assert_int_equal(rc, 1);
	assert_null(strstr(out, "level=info"));
	expect_in(out, "kubus: plugin \"fail_init\"");
	free(out);
	/* bus keys too; a list cannot be replaced by a scalar */
	rc = run_failing(f, "--set bus.listen=ipc://other.sock", &out);
	assert_int_equal(rc, 1);
	expect_in(out,
	    "kubus: cannot set `bus.listen`: it is a sequence, not a scalar");
	assert_null(strstr(out, "bus listening"));
	free(out);
	rc = run_failing(f, "--set bus.max_message=lots", &out);
	assert_int_equal(rc, 1);
	expect_in(out, "max_message");
	assert_null(strstr(out, "bus listening"));
	free(out);
}

/* A good run with --set on host keys: it starts, uses them, stops on SIGTERM. */
static void test_set_host_name(void **state)
{
	struct fx *f = *state;
	char *const extra[] = { "--set", "host.name=renamed", "--set",
		"host.log_level=debug", NULL };
	char *token = start_kubus(f,
	    "host:\n"
	    "  name: original\n"
	    "bus:\n"
	    "  listen: [ipc://kubus.sock]\n"
	    "plugins:\n"
	    "  - use: echo\n",
	    extra);
	free(token);
	char log[600];
	snprintf(log, sizeof(log), "%s/kubus.log", f->dir);
	char *text = kbt_slurp(log);
	expect_in(text, "msg=\"host running\" name=renamed");
	free(text);
	stop_kubus(f);
}

/* kubus kubeconfig: the user's token (made once, then the same), the CA
 * embedded, and clear errors without a CA or a user. */
static void test_kubeconfig(void **state)
{
	struct fx *f = *state;
	char *out = NULL, path[1024];
	expect_status(2, out, "kubeconfig --data-dir %s", f->dir);
	expect_in(out, "--user is required");
	free(out);
	expect_status(1, out, "kubeconfig --user viewer --data-dir %s", f->dir);
	expect_in(out, "no CA at");
	free(out);
	snprintf(path, sizeof(path), "%s/apiserver", f->dir);
	mkdir(path, 0700);
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout %s/ca.key -out %s/ca.crt -subj /CN=test-ca -days 1", path, path);
	char *o2 = NULL;
	assert_int_equal(kbt_run(cmd, &o2), 0);
	free(o2);
	expect_status(0, out, "kubeconfig --user viewer --groups viewers --data-dir %s --server https://127.0.0.1:7443",
	    f->dir);
	expect_in(out, "server: https://127.0.0.1:7443");
	expect_in(out, "certificate-authority-data: LS0t");
	expect_in(out, "- name: viewer");
	char *tok1 = line_with(out, "token: ");
	assert_non_null(tok1);
	free(out);
	expect_status(0, out, "kubeconfig --user viewer --data-dir %s", f->dir);
	char *tok2 = line_with(out, "token: ");
	assert_non_null(tok2);
	assert_string_equal(tok1, tok2);
	free(out);
	free(tok1);
	free(tok2);
	expect_status(0, out, "token list --data-dir %s", f->dir);
	expect_in(out, "viewers");
	free(out);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_version),
		T(test_help),
		T(test_misuse_exit_2),
		T(test_plugins),
		T(test_tokens),
		T(test_set_plugin_key),
		T(test_set_errors_and_host_keys),
		T(test_set_host_name),
		T(test_kubeconfig),
	};
	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
