/* tests/unit/test_isolate.c — an isolated plugin in a child process: it
 * serves through the parent's bus, comes back after SIGKILL and after an
 * abort(), and goes away with the parent on SIGTERM.
 *
 * The parent is the real `kubus run`; the test talks to it from an
 * in-process host that joins its bus over ipc with an admin token, so a
 * call to "crash" goes: test client -> joined host -> uplink -> kubus ->
 * child. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

struct fx {
	char *dir;
	char data[600], log[600], cfg[600];
	pid_t pid;   /* kubus */
	pid_t child; /* the last child pid seen */
	struct kbt_host *join;
	kb_ctx *c;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool alive(pid_t pid)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d", (int)pid);
	return access(p, F_OK) == 0;
}

/* pid's parent, from /proc/PID/stat; -1 when it is gone. */
static pid_t ppid_of(pid_t pid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ppid …": comm may hold spaces, skip to its ')' */
	char *rp = strrchr(buf, ')');
	int ppid = -1;
	char st;
	if (rp == NULL || sscanf(rp + 1, " %c %d", &st, &ppid) != 2)
		return -1;
	return ppid;
}

/* Is pid a `kubus child` process (so the teardown kills only ours)? */
static bool is_kubus_child(pid_t pid)
{
	char p[64], buf[512];
	snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* argv[0] ends in /kubus, argv[1] is "child" */
	size_t l0 = strlen(buf);
	return l0 >= 5 && strcmp(buf + l0 - 5, "kubus") == 0 && l0 + 1 < n &&
	    strcmp(buf + l0 + 1, "child") == 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = kbt_mkdtemp("isolate");
	assert_non_null(f->dir);
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/kubus.log", f->dir);
	snprintf(f->cfg, sizeof(f->cfg), "%s/c.yaml", f->dir);
	assert_int_equal(mkdir(f->data, 0700), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	kbt_host_stop(f->join);
	kbt_kill(f->pid);
	/* Not our child: kill it only if it is still the kubus child. */
	if (f->child > 0 && alive(f->child) && is_kubus_child(f->child))
		kill(f->child, SIGKILL);
	kbt_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Create the admin token, start `kubus run`, join its bus. */
static void start(struct fx *f)
{
	char cmd[2048], *out = NULL;
	snprintf(cmd, sizeof(cmd),
	    "'%s/kubus' token create --user admin --groups system:masters --file '%s/tokens.csv'",
	    kbt_build_dir(), f->data);
	int rc = kbt_run(cmd, &out);
	if (rc != 0)
		fail_msg("token create: %s", out);
	char token[256];
	snprintf(token, sizeof(token), "%s", out);
	token[strcspn(token, "\n")] = '\0';
	free(out);

	write_file(f->cfg,
	    "bus:\n"
	    "  listen: [ipc://kubus.sock]\n"
	    "plugins:\n"
	    "  - name: crash\n"
	    "    use: crash\n"
	    "    isolate: true\n");
	char kubus[600], path[600];
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	snprintf(path, sizeof(path), "%s/tests/plugins", kbt_build_dir());
	char *argv[] = { kubus, "run", "-c", f->cfg, "--plugin-path", path,
		"--data-dir", f->data, NULL };
	f->pid = kbt_spawn(argv, f->log);
	assert_true(f->pid > 0);
	/* kubus runs once the isolated child has registered. The child logs
	 * into the same file (and says "host running" too): wait for the
	 * parent's line that follows its "isolated plugin started". */
	int64_t end = now_ms() + 20000;
	for (;;) {
		char *text = kbt_slurp(f->log);
		const char *s = text ?
		    strstr(text,
			"msg=\"isolated plugin started\" instance=crash") :
		    NULL;
		bool up = s && strstr(s, "msg=\"host running\"");
		if (!up && (now_ms() > end || kbt_wait_pid(f->pid, 0) != -1))
			fail_msg("kubus did not come up:\n%s",
			    text ? text : "(no log)");
		free(text);
		if (up)
			break;
		usleep(20000);
	}

	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "bus:\n"
	    "  join: \"ipc://%s/kubus.sock\"\n"
	    "  join_token: \"%s\"\n"
	    "  listen: []\n",
	    f->data, token);
	f->join = kbt_host_start(yaml, err, sizeof(err));
	if (f->join == NULL)
		fail_msg("cannot join kubus: %s", err);
	static const char *const groups[] = { "kubus:plugins" };
	f->c = kbt_client(f->join, "tester", "plugin:tester", groups, 1);
	assert_non_null(f->c);
}

/* One "ping": 0 and the child's pid, or the error. */
static int ping(struct fx *f, pid_t *pid)
{
	kb_msg *rep = NULL;
	int rc = kb_call(f->c, "crash", "ping", NULL, 2000, &rep);
	if (rc == 0) {
		int64_t p = 0;
		if (!kb_mp_int(kb_msg_body(rep), "pid", &p))
			fail_msg("ping answered without a pid");
		*pid = (pid_t)p;
	}
	kb_msg_free(rep);
	return rc;
}

/* Ping until a child other than `old` answers, for up to 10 s. While it
 * is down the only acceptable answer is ServiceUnavailable. */
static pid_t wait_new_child(struct fx *f, pid_t old)
{
	int64_t end = now_ms() + 10000;
	int downs = 0;
	for (;;) {
		pid_t p = 0;
		int rc = ping(f, &p);
		if (rc == 0 && p != old)
			return p;
		if (rc != 0) {
			if (rc != KB_EUNAVAILABLE)
				fail_msg("ping while the child restarts: %s (%d), want ServiceUnavailable",
				    kb_strerror(rc), rc);
			downs++;
		}
		if (now_ms() > end) {
			char *text = kbt_slurp(f->log);
			fail_msg("no new child within 10 s (%d unavailable); log:\n%s",
			    downs, text ? text : "");
		}
		usleep(50000);
	}
}

static void test_isolated_restarts(void **state)
{
	struct fx *f = *state;
	start(f);

	pid_t p1 = 0;
	int rc = ping(f, &p1);
	if (rc != 0)
		fail_msg("first ping: %s", kb_strerror(rc));
	assert_true(p1 > 0);
	assert_int_not_equal(p1, f->pid);
	assert_int_not_equal(p1, getpid());
	f->child = p1;
	/* a child process of kubus, run as `kubus child` */
	assert_int_equal(ppid_of(p1), f->pid);
	assert_true(is_kubus_child(p1));
	/* it answers again, the same */
	pid_t again = 0;
	assert_int_equal(ping(f, &again), 0);
	assert_int_equal(again, p1);

	/* SIGKILL: it comes back as a new process and serves */
	assert_int_equal(kill(p1, SIGKILL), 0);
	pid_t p2 = wait_new_child(f, p1);
	f->child = p2;
	assert_int_not_equal(p2, f->pid);
	assert_int_equal(ppid_of(p2), f->pid);
	assert_false(alive(p1)); /* reaped, not a zombie */
	char *text = kbt_wait_file(f->log,
	    "msg=\"isolated plugin back\" instance=crash", 2000);
	if (text == NULL)
		fail_msg("no `isolated plugin back` in the log");
	assert_non_null(strstr(text, "killed by signal 9"));
	free(text);
	/* kubus itself never stopped */
	assert_int_equal(kbt_wait_pid(f->pid, 0), -1);

	/* abort() while answering: the request fails, the child comes back */
	kb_msg *rep = NULL;
	rc = kb_call(f->c, "crash", "abort", NULL, 5000, &rep);
	kb_msg_free(rep);
	assert_int_equal(rc, KB_EUNAVAILABLE);
	pid_t p3 = wait_new_child(f, p2);
	f->child = p3;
	assert_int_equal(ppid_of(p3), f->pid);
	assert_false(alive(p2));
	text = kbt_wait_file(f->log, "killed by signal 6", 2000);
	if (text == NULL)
		fail_msg("the abort is not in the log");
	free(text);

	/* SIGTERM: kubus stops its child and exits 0 within 5 s. The joined
	 * host stays up meanwhile, as a worker would (it loses its uplink). */
	assert_int_equal(kill(f->pid, SIGTERM), 0);
	int st = kbt_wait_pid(f->pid, 5000);
	text = kbt_slurp(f->log);
	if (st == -1)
		fail_msg("kubus still running 5 s after SIGTERM:\n%s", text);
	f->pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("kubus ended with status 0x%x, want exit 0:\n%s", st,
		    text);
	assert_non_null(strstr(text, "msg=\"plugin stopped\" instance=crash"));
	/* under ASan, kubus and its children report into the same log */
	if (strstr(text, "Sanitizer"))
		fail_msg("a sanitizer report in kubus's log:\n%s", text);
	free(text);
	for (int i = 0; i < 50 && alive(p3); i++)
		usleep(10000);
	if (alive(p3))
		fail_msg("the child %d outlived kubus", (int)p3);
	f->child = 0;

	/* The joined host notices and keeps trying; stopping it then must be
	 * clean even while it waits to reconnect. */
	pid_t p = 0;
	rc = ping(f, &p);
	assert_int_equal(rc, KB_EUNAVAILABLE);
	usleep(150000);
	kbt_host_stop(f->join);
	f->join = NULL;
	usleep(400000); /* a reconnect attempt would run now */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_isolated_restarts, setup,
		    teardown),
	};
	return cmocka_run_group_tests_name("isolate", tests, NULL, NULL);
}
