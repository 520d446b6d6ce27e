/* tests/unit/test_loader.c — every way loading can fail, through the real
 * `kubus run` binary: the exit status, and the one line that names the
 * plugin, its file and the reason. And a good config that starts and
 * stops in order on SIGTERM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

struct fx {
	char *dir;     /* config, data dir, logs */
	char cfg[512]; /* dir/c.yaml */
	pid_t pid;     /* a background kubus, killed by the teardown */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = kbt_mkdtemp("loader");
	assert_non_null(f->dir);
	snprintf(f->cfg, sizeof(f->cfg), "%s/c.yaml", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
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

/* Run `kubus run` on yaml; returns the exit status, output in *out. */
static int run_yaml(struct fx *f, const char *yaml, char **out)
{
	char cmd[4096];
	write_file(f->cfg, yaml);
	snprintf(cmd, sizeof(cmd),
	    "timeout -s KILL 20 '%s/kubus' run -c '%s' --plugin-path '%s/tests/plugins' --data-dir '%s/data'",
	    kbt_build_dir(), f->cfg, kbt_build_dir(), f->dir);
	int rc = kbt_run(cmd, out);
	assert_non_null(*out);
	return rc;
}

/* The lines of out that start with "kubus: " (the error lines, as opposed
 * to log lines): exactly one is expected; it is returned (malloc'd). */
static char *the_error_line(const char *out)
{
	char *line = NULL;
	int n = 0;
	for (const char *p = out; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (strncmp(p, "kubus: ", 7) == 0) {
			n++;
			free(line);
			line = strndup(p, len);
		}
		p += len + (nl != NULL);
	}
	if (n != 1 || strstr(out, "Sanitizer"))
		fail_msg("want exactly one `kubus: ` error line, got %d in:\n%s",
		    n, out);
	return line;
}

/* A plugin failure: exit status 1 and one line
 * `kubus: plugin "NAME" (FILE): …REASON…`. Returns the line (malloc'd). */
static char *expect_plugin_failure(struct fx *f, const char *yaml,
    const char *name, const char *file, const char *reason)
{
	char *out = NULL;
	int rc = run_yaml(f, yaml, &out);
	if (rc != 1)
		fail_msg("exit status %d, want 1; output:\n%s", rc, out);
	char *line = the_error_line(out);
	char head[512];
	snprintf(head, sizeof(head), "kubus: plugin \"%s\" (", name);
	if (strncmp(line, head, strlen(head)) != 0)
		fail_msg("line does not start with `%s`: %s", head, line);
	const char *close = strstr(line, "): ");
	if (close == NULL)
		fail_msg("no `(FILE): ` in: %s", line);
	/* FILE is what sits between the parentheses. */
	char got[1024];
	snprintf(got, sizeof(got), "%.*s", (int)(close - line - strlen(head)),
	    line + strlen(head));
	if (strstr(got, file) == NULL)
		fail_msg("file `%s` is not `%s`: %s", got, file, line);
	if (strstr(close + 3, reason) == NULL)
		fail_msg("reason `%s` missing: %s", reason, line);
	free(out);
	return line;
}

/* The resolved path of a test plugin as the loader names it. */
static const char *tp(const char *n)
{
	static char buf[8][1024];
	static int i;
	char *b = buf[i++ % 8];
	snprintf(b, 1024, "%s/tests/plugins/kubus-%s.so", kbt_build_dir(), n);
	return b;
}

/* --- finding and opening ---------------------------------------------------- */

static void test_file_missing(void **state)
{
	free(expect_plugin_failure(*state, "plugins:\n  - use: nosuch\n",
	    "nosuch", "nosuch", "no kubus-nosuch.so on the plugin path"));
	/* named: the instance name leads, the plugin name is the file */
	char *line = expect_plugin_failure(*state,
	    "plugins:\n  - name: store\n    use: nosuch\n", "store", "nosuch",
	    "no kubus-nosuch.so on the plugin path");
	/* the path searched is in the message */
	assert_non_null(strstr(line, "/tests/plugins"));
	free(line);
}

static void test_path_missing(void **state)
{
	struct fx *f = *state;
	char yaml[1024], file[700];
	snprintf(file, sizeof(file), "%s/nodir/kubus-ghost.so", f->dir);
	snprintf(yaml, sizeof(yaml), "plugins:\n  - name: ghost\n    use: %s\n",
	    file);
	free(expect_plugin_failure(f, yaml, "ghost", file, "file not found"));
}

static void test_dlopen_error(void **state)
{
	struct fx *f = *state;
	char yaml[1024], file[700];
	snprintf(file, sizeof(file), "%s/kubus-text.so", f->dir);
	write_file(file,
	    "This is a text file, not a shared object; dlopen must say so.\n"
	    "It is long enough to have an ELF header if it were one.\n");
	snprintf(yaml, sizeof(yaml), "plugins:\n  - name: text\n    use: %s\n",
	    file);
	char *line =
	    expect_plugin_failure(f, yaml, "text", file, "dlopen failed: ");
	assert_non_null(strstr(line, "ELF"));
	free(line);
}

static void test_no_descriptor(void **state)
{
	free(expect_plugin_failure(*state, "plugins:\n  - use: no_descriptor\n",
	    "no_descriptor", tp("no_descriptor"),
	    "no descriptor: the symbol kb_plugin_describe is not exported"));
}

static void test_bad_magic(void **state)
{
	free(expect_plugin_failure(*state,
	    "plugins:\n  - name: m\n    use: bad_magic\n", "m", tp("bad_magic"),
	    "bad magic 0xdeadbeef"));
}

static void test_abi_major(void **state)
{
	free(expect_plugin_failure(*state, "plugins:\n  - use: bad_abi\n",
	    "bad_abi", tp("bad_abi"),
	    "ABI 2.1, host 1.0: major version differs"));
}

static void test_abi_minor_newer(void **state)
{
	free(expect_plugin_failure(*state, "plugins:\n  - use: new_minor\n",
	    "new_minor", tp("new_minor"),
	    "ABI 1.7, host 1.0: the plugin needs a newer host"));
}

static void test_unknown_kind(void **state)
{
	free(expect_plugin_failure(*state, "plugins:\n  - use: bad_kind\n",
	    "bad_kind", tp("bad_kind"), "unknown kind 99"));
}

static void test_extension_as_plugin(void **state)
{
	free(expect_plugin_failure(*state,
	    "plugins:\n  - name: pol\n    use: ext_policy\n", "pol",
	    tp("ext_policy"),
	    "kind sched-policy is an extension: its owner loads it"));
}

/* A failure after good plugins: they were loaded, and nothing stays. */
static void test_failure_after_good_ones(void **state)
{
	char *line = expect_plugin_failure(*state,
	    "plugins:\n"
	    "  - use: echo\n"
	    "  - name: e2\n    use: echo\n    config: {service: e2}\n"
	    "  - use: bad_abi\n",
	    "bad_abi", tp("bad_abi"), "major version differs");
	free(line);
}

static void test_duplicate_name(void **state)
{
	struct fx *f = *state;
	char where[600];
	snprintf(where, sizeof(where), "%s:4:5", f->cfg);
	char *line = expect_plugin_failure(f,
	    "plugins:\n"
	    "  - use: echo\n"
	    "    config: {service: a}\n"
	    "  - use: echo\n"
	    "    config: {service: b}\n",
	    "echo", where, "duplicate instance name");
	free(line);
	/* a name: that repeats a plugin used without one collides too */
	snprintf(where, sizeof(where), "%s:3:5", f->cfg);
	free(expect_plugin_failure(f,
	    "plugins:\n"
	    "  - use: crash\n"
	    "  - name: crash\n"
	    "    use: echo\n",
	    "crash", where, "duplicate instance name"));
}

/* --- init and start ------------------------------------------------------------- */

static void test_init_error(void **state)
{
	char *line = expect_plugin_failure(*state,
	    "plugins:\n  - use: fail_init\n", "fail_init", tp("fail_init"),
	    "init failed: ");
	assert_non_null(strstr(line, "refusing to init"));
	free(line);
}

/* echo starts, fail_init refuses to: echo is stopped before the error. */
static void test_start_error_stops_started(void **state)
{
	struct fx *f = *state;
	char *out = NULL;
	int rc = run_yaml(f,
	    "plugins:\n"
	    "  - use: echo\n"
	    "  - use: fail_init\n"
	    "    config:\n"
	    "      fail_at: start\n",
	    &out);
	if (rc != 1)
		fail_msg("exit status %d, want 1:\n%s", rc, out);
	char *line = the_error_line(out);
	assert_non_null(strstr(line, "kubus: plugin \"fail_init\" ("));
	assert_non_null(strstr(line, tp("fail_init")));
	assert_non_null(strstr(line, "start failed: refusing to start"));
	const char *started =
	    strstr(out, "msg=\"plugin started\" instance=echo");
	const char *stopped =
	    strstr(out, "msg=\"plugin stopped\" instance=echo");
	const char *err = strstr(out, "kubus: plugin");
	if (!started || !stopped)
		fail_msg("echo was not started and stopped:\n%s", out);
	assert_true(started < stopped && stopped < err);
	/* the plugin that failed was never started, so never stopped */
	assert_null(strstr(out, "msg=\"plugin started\" instance=fail_init"));
	assert_null(strstr(out, "msg=\"plugin stopped\" instance=fail_init"));
	free(line);
	free(out);
}

/* --- unknown keys, with file:line:col ------------------------------------------- */

/* A config error that is not about one plugin's loading: one line with
 * "FILE:LINE:COL: unknown key `bogus`". */
static void expect_config_error(struct fx *f, const char *yaml, int line,
    int col, const char *scope)
{
	char *out = NULL;
	int rc = run_yaml(f, yaml, &out);
	if (rc != 1)
		fail_msg("exit status %d, want 1:\n%s", rc, out);
	char *l = the_error_line(out);
	char want[768];
	snprintf(want, sizeof(want), "%s:%d:%d: unknown key `bogus` %s", f->cfg,
	    line, col, scope);
	if (strstr(l, want) == NULL)
		fail_msg("want `%s` in: %s", want, l);
	/* nothing was loaded */
	assert_null(strstr(out, "plugin started"));
	free(l);
	free(out);
}

static void test_unknown_key_top(void **state)
{
	expect_config_error(*state,
	    "plugins:\n"
	    "  - use: echo\n"
	    "bogus: 1\n",
	    3, 1, "in the top level");
}

static void test_unknown_key_host(void **state)
{
	expect_config_error(*state,
	    "host:\n"
	    "  name: n1\n"
	    "  bogus: 1\n"
	    "plugins:\n"
	    "  - use: echo\n",
	    3, 3, "in host");
}

static void test_unknown_key_plugin_entry(void **state)
{
	expect_config_error(*state,
	    "plugins:\n"
	    "  - use: echo\n"
	    "    bogus: 1\n",
	    3, 5, "in plugins[0]");
}

/* The plugin's own option table: the error names the plugin and its file,
 * and where the key is. */
static void test_unknown_key_plugin_config(void **state)
{
	struct fx *f = *state;
	char where[700];
	snprintf(where, sizeof(where),
	    "%s:6:7: unknown key `bogus` in plugins[1].config", f->cfg);
	char *line = expect_plugin_failure(f,
	    "plugins:\n"
	    "  - use: crash\n"
	    "  - use: echo\n"
	    "    config:\n"
	    "      service: other\n"
	    "      bogus: 1\n",
	    "echo", tp("echo"), "init failed: ");
	if (strstr(line, where) == NULL)
		fail_msg("want `%s` in: %s", where, line);
	free(line);
	/* and a value of the wrong type for a known option */
	snprintf(where, sizeof(where),
	    "%s:4:16: `service` in plugins[0].config", f->cfg);
	line = expect_plugin_failure(f,
	    "plugins:\n"
	    "  - use: echo\n"
	    "    config:\n"
	    "      service: {a: 1}\n",
	    "echo", tp("echo"), "must be a string");
	if (strstr(line, where) == NULL)
		fail_msg("want `%s` in: %s", where, line);
	free(line);
}

/* --- a good config: start, then SIGTERM ------------------------------------------ */

static void test_good_config_sigterm(void **state)
{
	struct fx *f = *state;
	char data[600], log[600], sock[700], kubus[600], path[600];
	write_file(f->cfg,
	    "host:\n"
	    "  name: t1\n"
	    "bus:\n"
	    "  listen: [ipc://kubus.sock]\n"
	    "plugins:\n"
	    "  - use: echo\n"
	    "  - use: crash\n");
	snprintf(data, sizeof(data), "%s/data", f->dir);
	snprintf(log, sizeof(log), "%s/kubus.log", f->dir);
	snprintf(sock, sizeof(sock), "%s/kubus.sock", data);
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	snprintf(path, sizeof(path), "%s/tests/plugins", kbt_build_dir());
	char *argv[] = { kubus, "run", "-c", f->cfg, "--plugin-path", path,
		"--data-dir", data, NULL };
	f->pid = kbt_spawn(argv, log);
	assert_true(f->pid > 0);
	char *out = kbt_wait_file(log, "msg=\"host running\"", 15000);
	if (out == NULL) {
		out = kbt_slurp(log);
		fail_msg("kubus did not come up:\n%s", out ? out : "(no log)");
	}
	free(out);
	struct stat st;
	assert_int_equal(stat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* still running */
	assert_int_equal(kbt_wait_pid(f->pid, 0), -1);

	assert_int_equal(kill(f->pid, SIGTERM), 0);
	int status = kbt_wait_pid(f->pid, 5000);
	out = kbt_slurp(log);
	if (status == -1)
		fail_msg("kubus still running 5 s after SIGTERM:\n%s", out);
	f->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("kubus ended with status 0x%x, want exit 0:\n%s",
		    status, out);
	/* stopped in reverse order */
	const char *s_crash =
	    strstr(out, "msg=\"plugin stopped\" instance=crash");
	const char *s_echo =
	    strstr(out, "msg=\"plugin stopped\" instance=echo");
	if (!s_crash || !s_echo || s_crash > s_echo)
		fail_msg("plugins not stopped in reverse order:\n%s", out);
	assert_non_null(strstr(out, "msg=\"stopping\""));
	assert_null(strstr(out, "level=error"));
	assert_null(strstr(out, "Sanitizer"));
	free(out);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_file_missing),
		T(test_path_missing),
		T(test_dlopen_error),
		T(test_no_descriptor),
		T(test_bad_magic),
		T(test_abi_major),
		T(test_abi_minor_newer),
		T(test_unknown_kind),
		T(test_extension_as_plugin),
		T(test_failure_after_good_ones),
		T(test_duplicate_name),
		T(test_init_error),
		T(test_start_error_stops_started),
		T(test_unknown_key_top),
		T(test_unknown_key_host),
		T(test_unknown_key_plugin_entry),
		T(test_unknown_key_plugin_config),
		T(test_good_config_sigterm),
	};
	return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
