/* tests/unit/test_auth.c — tokens, bus ACL, RBAC and the `auth` service
 * (core/auth.c, core/tokens.c), without a running host: files go to a
 * fresh temporary directory and the service handler replies through a
 * fake host table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"

/* --- fixtures ------------------------------------------------------------- */

struct fx {
	char dir[64];
	char path[128]; /* dir/tokens.csv */
	struct kb_auth *a;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kubus-test-auth-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/tokens.csv", f->dir);
	f->a = kb_auth_new();
	assert_non_null(f->a);
	/* The reload test logs on purpose; keep the output for failures. */
	kb_log_level = KB_LOG_WARN;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	kb_auth_free(f->a);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Replace the file's content in one step, as an editor would. */
static void write_file(const char *path, const char *text, mode_t mode)
{
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *fp = fopen(tmp, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(tmp, mode), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char *buf = calloc(1, 65536);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static bool has_group(const struct kb_ident *id, const char *g)
{
	return kb_ident_in_group(id, g);
}

/* The user a token names, or NULL (the string is static). */
static const char *who_is(struct kb_auth *a, const char *token)
{
	static char user[64];
	struct kb_ident *id = NULL;
	int rc = kb_auth_authenticate(a, token, "conn:1", &id);
	if (rc != 0) {
		assert_int_equal(rc, KB_EUNAUTHORIZED);
		assert_null(id);
		return NULL;
	}
	snprintf(user, sizeof(user), "%s", id->user);
	kb_ident_unref(id);
	return user;
}

/* `token` names `user`, or nobody when `user` is NULL. */
static void expect_user(struct kb_auth *a, const char *token, const char *user)
{
	const char *got = who_is(a, token);
	if (got == NULL ? user != NULL : user == NULL || strcmp(got, user))
		fail_msg("token names %s, want %s", got ? got : "nobody",
		    user ? user : "nobody");
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* --- token file ----------------------------------------------------------- */

static const char tokens_csv[] =
    "# kube-apiserver --token-auth-file format\n"
    "\n"
    "tok-alice,alice,uid-1,\"system:masters,dev\"\n"
    "  tok-bob , bob , uid-2 , \" ops , , qa \"\n"
    "tok-carol,carol,uid-3\r\n"
    "tok-dave,dave,,single\n"
    "\"tok,\"\"quoted\",erin,uid-5,\n"
    "   # indented comment\n"
    "tok-last,last,uid-6"; /* no final newline */

static void test_tokens_parse(void **state)
{
	struct fx *f = *state;
	char err[256] = "";
	write_file(f->path, tokens_csv, 0600);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);

	struct kb_ident *id = NULL;
	assert_int_equal(kb_auth_authenticate(f->a, "tok-alice", "conn:7", &id),
	    0);
	assert_string_equal(id->endpoint, "conn:7");
	assert_string_equal(id->user, "alice");
	assert_string_equal(id->uid, "uid-1");
	assert_int_equal(id->ngroups, 3);
	assert_string_equal(id->groups[0], "system:masters");
	assert_string_equal(id->groups[1], "dev");
	assert_string_equal(id->groups[2], "system:authenticated");
	kb_ident_unref(id);

	/* Fields and groups are trimmed; empty groups are dropped. */
	assert_int_equal(kb_auth_authenticate(f->a, "tok-bob", "", &id), 0);
	assert_string_equal(id->user, "bob");
	assert_string_equal(id->uid, "uid-2");
	assert_int_equal(id->ngroups, 3);
	assert_true(has_group(id, "ops"));
	assert_true(has_group(id, "qa"));
	assert_true(has_group(id, "system:authenticated"));
	kb_ident_unref(id);

	/* No groups column: still authenticated. CRLF is fine. */
	assert_int_equal(kb_auth_authenticate(f->a, "tok-carol", "", &id), 0);
	assert_string_equal(id->uid, "uid-3");
	assert_int_equal(id->ngroups, 1);
	assert_string_equal(id->groups[0], "system:authenticated");
	kb_ident_unref(id);

	assert_int_equal(kb_auth_authenticate(f->a, "tok-dave", "", &id), 0);
	assert_string_equal(id->uid, "");
	assert_true(has_group(id, "single"));
	kb_ident_unref(id);

	expect_user(f->a, "tok,\"quoted", "erin");
	expect_user(f->a, "tok-last", "last");
	expect_user(f->a, "# kube-apiserver --token-auth-file format", NULL);
}

static void expect_malformed(struct fx *f, const char *text, int line,
    const char *what)
{
	char err[256] = "", want[256];
	write_file(f->path, text, 0600);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    KB_EINVAL);
	snprintf(want, sizeof(want), "%s:%d: ", f->path, line);
	if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, what))
		fail_msg("got \"%s\", want \"%s…%s…\"", err, want, what);
	/* Never a secret in a message. */
	assert_null(strstr(err, "s3cret"));
}

static void test_tokens_malformed(void **state)
{
	struct fx *f = *state;
	expect_malformed(f, "ok,a,1\ns3cret,bob\n", 2,
	    "expected token,user,uid");
	expect_malformed(f, "# c\n\ns3cret,bob,1,\"g1,g2\n", 3, "unterminated");
	expect_malformed(f, "s3cret,bob,1,g1,g2\n", 1, "quote the groups");
	expect_malformed(f, ",bob,1\n", 1, "empty token");
	expect_malformed(f, "s3cret,,1\n", 1, "empty user");
	expect_malformed(f, "s3cret,b\"ob,1\n", 1, "quote inside");
	expect_malformed(f, "s3cret,\"bob\"x,1\n", 1, "after a closing quote");
	expect_malformed(f, "s3cret,bob,1\nx\ns3cret,eve,2\n", 2, "expected");
	expect_malformed(f, "s3cret,bob,1\ns3cret,eve,2\n", 2,
	    "same token as on line 1");

	/* A failed load leaves the earlier tokens in place. */
	char err[256];
	write_file(f->path, "tok-1,one,1\n", 0600);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_malformed(f, "tok-2,two\n", 1, "expected");
	expect_user(f->a, "tok-1", "one");
}

static void test_tokens_mode_refused(void **state)
{
	struct fx *f = *state;
	char err[256] = "", want[256];
	write_file(f->path, "tok-1,one,1\n", 0644);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    KB_EFORBIDDEN);
	snprintf(want, sizeof(want),
	    "token file %s is readable by others (mode 0644); chmod 600 it",
	    f->path);
	assert_string_equal(err, want);
	expect_user(f->a, "tok-1", NULL);

	write_file(f->path, "tok-1,one,1\n", 0620);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    KB_EFORBIDDEN);
	assert_non_null(strstr(err, "writable by others (mode 0620)"));

	write_file(f->path, "tok-1,one,1\n", 0400);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_user(f->a, "tok-1", "one");
}

static void test_tokens_missing_file(void **state)
{
	struct fx *f = *state;
	char err[256] = "";
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_user(f->a, "anything", NULL);

	/* Created later: picked up by the next check. */
	write_file(f->path, "tok-new,newcomer,1\n", 0600);
	sleep_ms(1100);
	expect_user(f->a, "tok-new", "newcomer");

	/* Deleted: every file token is gone. */
	assert_int_equal(unlink(f->path), 0);
	sleep_ms(1100);
	expect_user(f->a, "tok-new", NULL);
}

static void test_authenticate(void **state)
{
	struct fx *f = *state;
	char err[256];
	write_file(f->path, "0123456789abcdef,alice,1\n", 0600);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_user(f->a, "0123456789abcdef", "alice");
	expect_user(f->a, "0123456789abcdeF", NULL);
	expect_user(f->a, "0123456789abcde", NULL);
	expect_user(f->a, "0123456789abcdef0", NULL);
	expect_user(f->a, "alice", NULL);
	expect_user(f->a, "", NULL);

	struct kb_ident *id = (struct kb_ident *)1;
	assert_int_equal(kb_auth_authenticate(f->a, NULL, "x", &id),
	    KB_EUNAUTHORIZED);
	assert_null(id);
}

static void test_tokens_reload_on_mtime(void **state)
{
	struct fx *f = *state;
	char err[256];
	write_file(f->path, "tok-old,old,1\n", 0600);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_user(f->a, "tok-old", "old");

	/* Rewritten in place (same inode), as `echo >>` or an editor does. */
	FILE *fp = fopen(f->path, "w");
	assert_non_null(fp);
	fputs("tok-new,new,2\n", fp);
	fclose(fp);
	sleep_ms(1100);
	expect_user(f->a, "tok-old", NULL);
	expect_user(f->a, "tok-new", "new");

	/* A broken edit keeps the tokens that worked. */
	write_file(f->path, "tok-broken\n", 0600);
	sleep_ms(1100);
	expect_user(f->a, "tok-new", "new");
	expect_user(f->a, "tok-broken", NULL);

	/* Fixed again: loaded again. */
	write_file(f->path, "tok-fixed,fixed,3\n", 0600);
	sleep_ms(1100);
	expect_user(f->a, "tok-fixed", "fixed");
	expect_user(f->a, "tok-new", NULL);
}

static void test_tokens_ephemeral(void **state)
{
	struct fx *f = *state;
	char err[256];
	const char *groups[] = { "kubus:plugins", "kubus:kind:controller" };
	assert_int_equal(kb_auth_add_token(f->a, "child-secret",
			     "plugin:ctrl-gc", "uid-gc", groups, 2),
	    0);
	assert_int_equal(kb_auth_add_token(f->a, "child-secret", "x", NULL,
			     NULL, 0),
	    KB_EEXIST);
	assert_int_equal(kb_auth_add_token(f->a, "", "x", NULL, NULL, 0),
	    KB_EINVAL);
	assert_int_equal(kb_auth_add_token(f->a, "t", "", NULL, NULL, 0),
	    KB_EINVAL);

	struct kb_ident *id;
	assert_int_equal(kb_auth_authenticate(f->a, "child-secret", "ipc:3",
			     &id),
	    0);
	assert_string_equal(id->user, "plugin:ctrl-gc");
	assert_string_equal(id->uid, "uid-gc");
	assert_int_equal(id->ngroups, 3);
	assert_true(has_group(id, "kubus:kind:controller"));
	assert_true(has_group(id, "system:authenticated"));
	kb_ident_unref(id);

	/* Loading (or reloading) the file leaves in-memory tokens alone, and
	 * they are never written to it. */
	write_file(f->path, "tok-1,one,1\n", 0600);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_user(f->a, "child-secret", "plugin:ctrl-gc");
	char *text = slurp(f->path);
	assert_null(strstr(text, "child-secret"));
	free(text);
}

struct hammer {
	struct kb_auth *a;
	atomic_bool *stop;
	long ok, bad;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	while (!atomic_load(h->stop)) {
		struct kb_ident *id;
		if (kb_auth_authenticate(h->a, "tok-stable", "", &id) == 0) {
			h->ok++;
			kb_ident_unref(id);
		} else {
			h->bad++;
		}
	}
	return NULL;
}

/* Many threads authenticate while the file is replaced under them. */
static void test_tokens_concurrent_reload(void **state)
{
	struct fx *f = *state;
	char err[256];
	atomic_bool stop = false;
	write_file(f->path, "tok-stable,s,1\n", 0600);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	struct hammer h[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ .a = f->a, .stop = &stop };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]),
		    0);
	}
	/* Long enough for at least two reloads. */
	for (int i = 0; i < 5; i++) {
		char text[64];
		snprintf(text, sizeof(text), "tok-stable,s,1\ntok-%d,x,2\n", i);
		write_file(f->path, text, 0600);
		sleep_ms(500);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(h[i].bad, 0);
		assert_true(h[i].ok > 0);
	}
	sleep_ms(1100);
	expect_user(f->a, "tok-4", "x");
}

/* --- small pieces ------------------------------------------------------- */

static void test_streq_ct_and_glob(void **state)
{
	(void)state;
	assert_true(kb_auth_streq_ct("abc", "abc"));
	assert_true(kb_auth_streq_ct("", ""));
	assert_false(kb_auth_streq_ct("abc", "abd"));
	assert_false(kb_auth_streq_ct("abc", "abcd"));
	assert_false(kb_auth_streq_ct("abc", NULL));

	assert_true(kb_auth_glob("*", ""));
	assert_true(kb_auth_glob("*", "store"));
	assert_true(kb_auth_glob("store/*", "store/pods"));
	assert_true(kb_auth_glob("store/*", "store/"));
	assert_false(kb_auth_glob("store/*", "store"));
	assert_true(kb_auth_glob("store", "store"));
	assert_false(kb_auth_glob("store", "store2"));
	assert_false(kb_auth_glob("store", "stor"));
}

/* --- bus ACL -------------------------------------------------------------- */

static struct kb_ident *ident(const char *user, const char *g1, const char *g2)
{
	const char *groups[2] = { g1, g2 };
	size_t n = g2 ? 2 : g1 ? 1 : 0;
	struct kb_ident *id = kb_ident_new("ep", user, "", groups, n);
	assert_non_null(id);
	return id;
}

static void test_acl_default(void **state)
{
	struct fx *f = *state;
	struct kb_auth *a = f->a;
	struct kb_ident *plugin =
	    ident("plugin:ctrl-gc", "kubus:plugins", "kubus:kind:controller");
	struct kb_ident *front =
	    ident("plugin:apiserver", "kubus:plugins", "kubus:kind:frontend");
	struct kb_ident *store =
	    ident("plugin:store", "kubus:plugins", "kubus:kind:store");
	struct kb_ident *admin = ident("admin", "system:masters", NULL);
	struct kb_ident *node =
	    ident("node:n1", "system:nodes", "system:authenticated");
	struct kb_ident *nobody = ident("bob", "system:authenticated", NULL);

	/* A plugin calls the API, never the store. */
	assert_true(kb_auth_may_call(a, plugin, "api", "list"));
	assert_true(kb_auth_may_call(a, plugin, "kubelet/node-1", "logs"));
	assert_false(kb_auth_may_call(a, plugin, "store", "get"));
	assert_true(kb_auth_may_publish(a, plugin, "events/pods"));
	assert_false(kb_auth_may_publish(a, plugin, "store/pods"));
	assert_true(kb_auth_may_subscribe(a, plugin, "api/pods"));
	assert_true(kb_auth_may_subscribe(a, plugin, "api/*"));
	assert_false(kb_auth_may_subscribe(a, plugin, "store/pods"));
	assert_false(kb_auth_may_subscribe(a, plugin, "store/*"));
	/* These would deliver store topics too. */
	assert_false(kb_auth_may_subscribe(a, plugin, "*"));
	assert_false(kb_auth_may_subscribe(a, plugin, "st*"));

	/* The frontend may reach the store. */
	assert_true(kb_auth_may_call(a, front, "store", "put"));
	assert_true(kb_auth_may_call(a, front, "api", "get"));
	assert_true(kb_auth_may_subscribe(a, front, "store/*"));
	assert_true(kb_auth_may_publish(a, front, "store/x"));

	/* The store publishes its events but calls nothing of the store. */
	assert_true(kb_auth_may_publish(a, store, "store/pods"));
	assert_false(kb_auth_may_call(a, store, "store", "get"));

	assert_true(kb_auth_may_call(a, admin, "store", "compact"));
	assert_true(kb_auth_may_subscribe(a, admin, "*"));
	assert_true(kb_auth_may_publish(a, admin, "store/x"));

	assert_true(kb_auth_may_call(a, node, "api", "watch"));
	assert_false(kb_auth_may_call(a, node, "store", "get"));
	assert_false(kb_auth_may_subscribe(a, node, "store/*"));

	/* Deny by default. */
	assert_false(kb_auth_may_call(a, nobody, "api", "get"));
	assert_false(kb_auth_may_publish(a, nobody, "x"));
	assert_false(kb_auth_may_subscribe(a, nobody, "x"));
	assert_false(kb_auth_may_call(a, NULL, "api", "get"));

	kb_ident_unref(plugin);
	kb_ident_unref(front);
	kb_ident_unref(store);
	kb_ident_unref(admin);
	kb_ident_unref(node);
	kb_ident_unref(nobody);
}

static kb_conf *yaml(const char *text)
{
	char err[256] = "";
	kb_conf *c = kb_conf_parse_yaml(text, strlen(text), "auth.yaml", err,
	    sizeof(err));
	if (c == NULL)
		fail_msg("yaml: %s", err);
	return c;
}

static int load(struct kb_auth *a, const char *text, char *err, size_t len)
{
	kb_conf *c = yaml(text);
	int rc = kb_auth_load_policy(a, kb_conf_get(c, "policy"),
	    kb_conf_get(c, "rbac"), err, len);
	kb_conf_free(c);
	return rc;
}

static const char acl_yaml[] =
    "policy:\n"
    "  - users: [\"scheduler\", \"ctrl-*\", \"!ctrl-evil\"]\n"
    "    call: [\"api\", \"kubelet/*\"]\n"
    "    ops: [\"get\", \"list\", \"watch\"]\n"
    "    publish: [\"sched/*\", \"!sched/secret\"]\n"
    "    subscribe: [\"api/*\", \"!api/secrets*\"]\n"
    "  - groups: [\"ops\", \"!interns\"]\n"
    "    call: [\"*\", \"!store\", \"!auth\"]\n"
    "  - users: [everyone]\n"
    "    call: [\"ping\"]\n"
    "    ops: []\n";

static void test_acl_config(void **state)
{
	struct fx *f = *state;
	char err[256] = "";
	assert_int_equal(load(f->a, acl_yaml, err, sizeof(err)), 0);

	struct kb_ident *sched = ident("scheduler", NULL, NULL);
	struct kb_ident *ctrl = ident("ctrl-gc", NULL, NULL);
	struct kb_ident *evil = ident("ctrl-evil", NULL, NULL);
	struct kb_ident *op = ident("olga", "ops", NULL);
	struct kb_ident *intern = ident("ivan", "ops", "interns");
	struct kb_ident *all = ident("everyone", NULL, NULL);
	struct kb_ident *plugin = ident("p", "kubus:plugins", NULL);

	assert_true(kb_auth_may_call(f->a, sched, "api", "get"));
	assert_true(kb_auth_may_call(f->a, sched, "kubelet/n1", "watch"));
	assert_false(kb_auth_may_call(f->a, sched, "api", "delete"));
	assert_false(kb_auth_may_call(f->a, sched, "apix", "get"));
	assert_true(kb_auth_may_call(f->a, ctrl, "api", "list"));
	assert_false(kb_auth_may_call(f->a, evil, "api", "list"));

	assert_true(kb_auth_may_publish(f->a, sched, "sched/bind"));
	assert_false(kb_auth_may_publish(f->a, sched, "sched/secret"));
	assert_false(kb_auth_may_publish(f->a, sched, "other"));
	assert_true(kb_auth_may_subscribe(f->a, sched, "api/pods"));
	assert_true(kb_auth_may_subscribe(f->a, sched, "api/pods/*"));
	assert_false(kb_auth_may_subscribe(f->a, sched, "api/secrets"));
	assert_false(kb_auth_may_subscribe(f->a, sched, "api/*"));
	assert_false(kb_auth_may_subscribe(f->a, sched, "api/sec*"));

	/* Absent `ops` is every op; a "!" group excludes its members. */
	assert_true(kb_auth_may_call(f->a, op, "api", "delete"));
	assert_true(kb_auth_may_call(f->a, op, "anything", "x"));
	assert_false(kb_auth_may_call(f->a, op, "store", "get"));
	assert_false(kb_auth_may_call(f->a, op, "auth", "authorize"));
	assert_false(kb_auth_may_publish(f->a, op, "x"));
	assert_false(kb_auth_may_call(f->a, intern, "api", "get"));

	/* An empty `ops` list allows no op. */
	assert_false(kb_auth_may_call(f->a, all, "ping", "ping"));

	/* A policy in config replaces the built-in one entirely. */
	assert_false(kb_auth_may_call(f->a, plugin, "api", "get"));

	/* And null brings the default back. */
	assert_int_equal(kb_auth_load_policy(f->a, NULL, NULL, err,
			     sizeof(err)),
	    0);
	assert_true(kb_auth_may_call(f->a, plugin, "api", "get"));

	kb_ident_unref(sched);
	kb_ident_unref(ctrl);
	kb_ident_unref(evil);
	kb_ident_unref(op);
	kb_ident_unref(intern);
	kb_ident_unref(all);
	kb_ident_unref(plugin);
}

/* kb_auth_may_publish remembers its answers per thread: a new policy, an
 * other kb_auth (at a freed one's address too) and an other identity (at
 * a freed one's address too) must each get their own answer. */
static void test_acl_publish_memo(void **state)
{
	struct fx *f = *state;
	static const char allow[] = "policy:\n"
				    "  - users: [pub]\n"
				    "    publish: [\"w/*\"]\n";
	static const char other[] = "policy:\n"
				    "  - users: [pub]\n"
				    "    publish: [\"x/*\"]\n";
	char err[256] = "";
	char longt[121];
	memset(longt, 'a', sizeof(longt) - 1);
	memcpy(longt, "w/", 2);
	longt[sizeof(longt) - 1] = '\0';
	struct kb_ident *pub = ident("pub", NULL, NULL);

	assert_int_equal(load(f->a, allow, err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) { /* asked, then remembered */
		assert_true(kb_auth_may_publish(f->a, pub, "w/1"));
		assert_false(kb_auth_may_publish(f->a, pub, "x/1"));
		assert_true(kb_auth_may_publish(f->a, pub, longt));
	}
	assert_int_equal(load(f->a, other, err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		assert_false(kb_auth_may_publish(f->a, pub, "w/1"));
		assert_true(kb_auth_may_publish(f->a, pub, "x/1"));
		assert_false(kb_auth_may_publish(f->a, pub, longt));
	}
	assert_int_equal(load(f->a, allow, err, sizeof(err)), 0);
	assert_true(kb_auth_may_publish(f->a, pub, "w/1"));
	assert_false(kb_auth_may_publish(f->a, pub, "x/1"));

	/* Another kb_auth, with the built-in policy (nothing for `pub`),
	 * made again and again where a freed one was. */
	for (int i = 0; i < 8; i++) {
		struct kb_auth *b = kb_auth_new();
		assert_non_null(b);
		assert_false(kb_auth_may_publish(b, pub, "w/1"));
		assert_int_equal(load(b, allow, err, sizeof(err)), 0);
		assert_true(kb_auth_may_publish(b, pub, "w/1"));
		kb_auth_free(b);
	}
	assert_true(kb_auth_may_publish(f->a, pub, "w/1"));

	/* Identities that come and go, likely at the same address. */
	for (int i = 0; i < 8; i++) {
		struct kb_ident *yes = ident("pub", NULL, NULL);
		assert_true(kb_auth_may_publish(f->a, yes, "w/2"));
		kb_ident_unref(yes);
		struct kb_ident *no = ident("nobody", NULL, NULL);
		assert_false(kb_auth_may_publish(f->a, no, "w/2"));
		kb_ident_unref(no);
	}
	kb_ident_unref(pub);
}

static void expect_policy_err(struct kb_auth *a, const char *text,
    const char *want)
{
	char err[256] = "";
	assert_int_equal(load(a, text, err, sizeof(err)), KB_EINVAL);
	if (strcmp(err, want) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"", err, want);
}

static void test_policy_errors(void **state)
{
	struct fx *f = *state;
	expect_policy_err(f->a,
	    "policy:\n"
	    "  - groups: [g]\n"
	    "    cal: [\"*\"]\n",
	    "auth.yaml:3:10: unknown key `cal` in policy[0]; expected users, "
	    "groups, call, ops, publish or subscribe");
	expect_policy_err(f->a,
	    "policy:\n"
	    "  - groups: [g]\n"
	    "    call: api\n",
	    "auth.yaml:3:11: `call` in policy[0].call must be a list of "
	    "strings, e.g. [\"*\"]");
	expect_policy_err(f->a,
	    "policy:\n"
	    "  - groups: [g]\n"
	    "    call: [\"a*b\"]\n",
	    "auth.yaml:3:12: `a*b` in policy[0].call: '*' may only end a "
	    "pattern");
	expect_policy_err(f->a,
	    "policy:\n"
	    "  - groups: [g]\n"
	    "    call: [\"!\"]\n",
	    "auth.yaml:3:12: `!` in policy[0].call: '!' needs a pattern after "
	    "it");
	expect_policy_err(f->a,
	    "policy:\n"
	    "  - call: [\"*\"]\n",
	    "auth.yaml:2:5: policy[0] names no users or groups, so it applies "
	    "to no one");
	expect_policy_err(f->a,
	    "policy:\n"
	    "  groups: [g]\n",
	    "auth.yaml:2:3: policy must be a list of rules");
	expect_policy_err(f->a,
	    "rbac:\n"
	    "  - users: [u]\n"
	    "    verbs: [get]\n"
	    "    resources: [pods]\n",
	    "auth.yaml:2:5: rbac[0] needs `apiGroups`");
	expect_policy_err(f->a,
	    "rbac:\n"
	    "  - users: [u]\n"
	    "    verbs: [get]\n"
	    "    apiGroups: [\"\"]\n"
	    "    resources: [\"*/\"]\n",
	    "auth.yaml:5:17: `*/` in rbac[0].resources: \"*/\" must be "
	    "followed by a subresource name");

	/* A failed load changes nothing. */
	struct kb_ident *plugin = ident("p", "kubus:plugins", NULL);
	assert_true(kb_auth_may_call(f->a, plugin, "api", "get"));
	kb_ident_unref(plugin);
}

/* --- RBAC ----------------------------------------------------------------- */

static const char *const viewer_groups[] = { "system:authenticated" };

static void test_rbac_default(void **state)
{
	struct fx *f = *state;
	char reason[256];
	const char *masters[] = { "system:masters", "system:authenticated" };
	const char *nodes[] = { "system:nodes" };
	const char *plugins[] = { "kubus:plugins", "kubus:kind:scheduler" };

	assert_true(
	    kb_auth_authorize(f->a, "admin", masters, 2, "delete", "apps",
		"deployments", NULL, "default", "web", reason, sizeof(reason)));
	assert_string_equal(reason, "");
	assert_true(kb_auth_authorize(f->a, "plugin:scheduler", plugins, 2,
	    "create", "", "pods", "binding", "default", "p", NULL, 0));

	assert_false(
	    kb_auth_authorize(f->a, "viewer", viewer_groups, 1, "create", "",
		"pods", NULL, "default", NULL, reason, sizeof(reason)));
	assert_string_equal(reason,
	    "User \"viewer\" cannot create resource \"pods\" in API group \"\" "
	    "in the namespace \"default\"");
	assert_false(kb_auth_authorize(f->a, "viewer", viewer_groups, 1, "list",
	    "", "nodes", NULL, NULL, NULL, reason, sizeof(reason)));
	assert_string_equal(reason,
	    "User \"viewer\" cannot list resource \"nodes\" in API group \"\" "
	    "at the cluster scope");
	assert_false(kb_auth_authorize(f->a, "viewer", viewer_groups, 1, "get",
	    "", "pods", "log", "kube-system", "p", reason, sizeof(reason)));
	assert_string_equal(reason,
	    "User \"viewer\" cannot get resource \"pods/log\" in API group \"\" "
	    "in the namespace \"kube-system\"");

	/* Nodes: their own kinds of objects, not the rest. */
	assert_true(kb_auth_authorize(f->a, "node:n1", nodes, 1, "patch", "",
	    "nodes", "status", "", "n1", NULL, 0));
	assert_true(kb_auth_authorize(f->a, "node:n1", nodes, 1, "update",
	    "coordination.k8s.io", "leases", NULL, "kube-node-lease", "n1",
	    NULL, 0));
	assert_true(kb_auth_authorize(f->a, "node:n1", nodes, 1, "update", "",
	    "pods", "status", "default", "p", NULL, 0));
	assert_false(
	    kb_auth_authorize(f->a, "node:n1", nodes, 1, "create", "apps",
		"deployments", NULL, "default", NULL, reason, sizeof(reason)));
	assert_string_equal(reason,
	    "User \"node:n1\" cannot create resource \"deployments\" in API "
	    "group \"apps\" in the namespace \"default\"");
	assert_false(kb_auth_authorize(f->a, "node:n1", nodes, 1, "get", "",
	    "pods", "exec", "default", "p", NULL, 0));

	/* Quotes in a name are escaped as Go's %q would. */
	assert_false(kb_auth_authorize(f->a, "a\"b", NULL, 0, "get", "", "pods",
	    NULL, "default", NULL, reason, sizeof(reason)));
	assert_string_equal(reason,
	    "User \"a\\\"b\" cannot get resource \"pods\" in API group \"\" in "
	    "the namespace \"default\"");
}

static const char rbac_yaml[] =
    "rbac:\n"
    "  - groups: [viewers]\n"
    "    verbs: [get, list, watch]\n"
    "    apiGroups: [\"\", apps]\n"
    "    resources: [\"*\", \"!secrets\", \"!pods/*\"]\n"
    "    namespaces: [default, \"team-*\"]\n"
    "  - users: [logreader]\n"
    "    verbs: [get]\n"
    "    apiGroups: [\"\"]\n"
    "    resources: [pods/log]\n"
    "    namespaces: [\"\"]\n"
    "  - users: [cm-editor]\n"
    "    verbs: [\"*\"]\n"
    "    apiGroups: [\"\"]\n"
    "    resources: [configmaps]\n"
    "    names: [app-config, \"app-*\", \"!app-secret\"]\n"
    "  - users: [scaler]\n"
    "    verbs: [update, patch]\n"
    "    apiGroups: [\"*\"]\n"
    "    resources: [\"*/scale\"]\n"
    "    namespaces: [\"*\", \"!kube-system\"]\n"
    "  - users: [nodewatcher]\n"
    "    verbs: [list]\n"
    "    apiGroups: [\"\"]\n"
    "    resources: [nodes]\n";

static bool can(struct kb_auth *a, const char *user, const char *group,
    const char *verb, const char *api_group, const char *res, const char *sub,
    const char *ns, const char *name)
{
	const char *groups[] = { group };
	return kb_auth_authorize(a, user, groups, group ? 1 : 0, verb,
	    api_group, res, sub, ns, name, NULL, 0);
}

static void test_rbac_config(void **state)
{
	struct fx *f = *state;
	struct kb_auth *a = f->a;
	char err[256] = "";
	assert_int_equal(load(a, rbac_yaml, err, sizeof(err)), 0);

	assert_true(
	    can(a, "v", "viewers", "get", "", "pods", NULL, "default", "p"));
	assert_true(can(a, "v", "viewers", "list", "apps", "deployments", NULL,
	    "team-a", NULL));
	assert_false(
	    can(a, "v", "viewers", "delete", "", "pods", NULL, "default", "p"));
	assert_false(
	    can(a, "v", "viewers", "get", "", "secrets", NULL, "default", "s"));
	assert_false(
	    can(a, "v", "viewers", "get", "", "pods", "log", "default", "p"));
	assert_false(can(a, "v", "viewers", "get", "batch", "jobs", NULL,
	    "default", "j"));
	assert_false(can(a, "v", "viewers", "get", "", "pods", NULL,
	    "kube-system", "p"));
	/* Namespaced rules grant neither cluster scope nor all namespaces. */
	assert_false(
	    can(a, "v", "viewers", "list", "", "pods", NULL, NULL, NULL));
	assert_false(
	    can(a, "v", "viewers", "get", "", "nodes", NULL, "", "n1"));
	assert_false(
	    can(a, "someone", NULL, "get", "", "pods", NULL, "default", "p"));

	/* Subresources are named; "" namespaces means all of them. */
	assert_true(can(a, "logreader", NULL, "get", "", "pods", "log",
	    "anywhere", "p"));
	assert_true(
	    can(a, "logreader", NULL, "get", "", "pods", "log", NULL, NULL));
	assert_false(can(a, "logreader", NULL, "get", "", "pods", NULL,
	    "anywhere", "p"));

	/* Names: prefix and exclusion; no collections. */
	assert_true(can(a, "cm-editor", NULL, "update", "", "configmaps", NULL,
	    "default", "app-config"));
	assert_true(can(a, "cm-editor", NULL, "delete", "", "configmaps", NULL,
	    "default", "app-x"));
	assert_false(can(a, "cm-editor", NULL, "get", "", "configmaps", NULL,
	    "default", "app-secret"));
	assert_false(can(a, "cm-editor", NULL, "get", "", "configmaps", NULL,
	    "default", "other"));
	assert_false(can(a, "cm-editor", NULL, "list", "", "configmaps", NULL,
	    "default", NULL));

	/* "*\/scale" and a namespace exclusion. */
	assert_true(can(a, "scaler", NULL, "patch", "apps", "deployments",
	    "scale", "default", "web"));
	assert_false(can(a, "scaler", NULL, "patch", "apps", "deployments",
	    NULL, "default", "web"));
	assert_false(can(a, "scaler", NULL, "patch", "apps", "deployments",
	    "scale", "kube-system", "web"));
	assert_false(can(a, "scaler", NULL, "patch", "apps", "deployments",
	    "scale", NULL, NULL));

	/* No namespaces key: every namespace and the cluster scope. */
	assert_true(
	    can(a, "nodewatcher", NULL, "list", "", "nodes", NULL, NULL, NULL));

	/* A config rbac replaces the default: masters are not special. */
	const char *m[] = { "system:masters" };
	assert_false(kb_auth_authorize(a, "admin", m, 1, "get", "", "pods",
	    NULL, "default", "p", NULL, 0));
}

/* --- kubus token create | list | revoke ---------------------------------- */

static bool is_hex64(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!isxdigit((unsigned char)s[n]) ||
		    isupper((unsigned char)s[n]))
			return false;
	return n == 64;
}

static char *list_text(const char *path)
{
	char *buf = NULL, err[256] = "";
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	assert_non_null(out);
	int rc = kb_tokens_list(path, out, err, sizeof(err));
	fclose(out);
	if (rc != 0)
		fail_msg("list: %s", err);
	return buf;
}

static void test_tokens_create_list_revoke(void **state)
{
	struct fx *f = *state;
	char err[256] = "", t1[65], t2[65], t3[80];

	assert_int_equal(kb_tokens_create(f->path, "alice", "u-1",
			     "system:masters,dev", t1, sizeof(t1), err,
			     sizeof(err)),
	    0);
	assert_true(is_hex64(t1));
	assert_int_equal(mode_of(f->path), 0600);
	assert_int_equal(kb_tokens_create(f->path, "bob", NULL, NULL, t2,
			     sizeof(t2), err, sizeof(err)),
	    0);
	assert_int_equal(kb_tokens_create(f->path, "bob", "u-3", "ops", t3,
			     sizeof(t3), err, sizeof(err)),
	    0);
	assert_string_not_equal(t1, t2);
	assert_string_not_equal(t2, t3);

	/* What create wrote, load reads. */
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	struct kb_ident *id;
	assert_int_equal(kb_auth_authenticate(f->a, t1, "", &id), 0);
	assert_string_equal(id->user, "alice");
	assert_string_equal(id->uid, "u-1");
	assert_true(has_group(id, "system:masters"));
	assert_true(has_group(id, "dev"));
	kb_ident_unref(id);
	assert_int_equal(kb_auth_authenticate(f->a, t2, "", &id), 0);
	assert_string_equal(id->uid, "bob"); /* the uid defaults to the user */
	kb_ident_unref(id);

	/* list: users and a short prefix, never a whole token. */
	char *text = list_text(f->path);
	char prefix[12];
	snprintf(prefix, sizeof(prefix), "%.8s...", t1);
	assert_non_null(strstr(text, "USER"));
	assert_non_null(strstr(text, "system:masters,dev"));
	assert_non_null(strstr(text, "<none>"));
	assert_non_null(strstr(text, prefix));
	assert_null(strstr(text, t1));
	assert_null(strstr(text, t2));
	free(text);

	/* Revoke one token: the other tokens of that user stay. */
	assert_int_equal(kb_tokens_revoke(f->path, t2, err, sizeof(err)), 0);
	assert_int_equal(mode_of(f->path), 0600);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_user(f->a, t2, NULL);
	expect_user(f->a, t3, "bob");

	/* Revoke by user name. */
	assert_int_equal(kb_tokens_revoke(f->path, "bob", err, sizeof(err)), 0);
	assert_int_equal(kb_tokens_revoke(f->path, "bob", err, sizeof(err)),
	    KB_ENOTFOUND);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_user(f->a, t3, NULL);
	expect_user(f->a, t1, "alice");
	assert_int_equal(mode_of(f->path), 0600);
}

static void test_tokens_maintenance_edges(void **state)
{
	struct fx *f = *state;
	char err[256] = "", tok[65];

	/* Revoke keeps comments and other lines as they were; list and
	 * revoke of a missing file. */
	assert_int_equal(kb_tokens_revoke(f->path, "x", err, sizeof(err)),
	    KB_ENOTFOUND);
	char *text = list_text(f->path);
	assert_non_null(strstr(text, "USER"));
	free(text);

	write_file(f->path,
	    "# admins\n"
	    "tok-a,alice,1,\"a, b\"\n"
	    "\n"
	    "tok-z,zed,2",
	    0600);
	assert_int_equal(kb_tokens_revoke(f->path, "alice", err, sizeof(err)),
	    0);
	text = slurp(f->path);
	assert_string_equal(text, "# admins\n\ntok-z,zed,2");
	free(text);

	/* Appending after a last line without a newline starts a new one. */
	assert_int_equal(kb_tokens_create(f->path, "yan", "3", "", tok,
			     sizeof(tok), err, sizeof(err)),
	    0);
	assert_int_equal(kb_auth_load_tokens(f->a, f->path, err, sizeof(err)),
	    0);
	expect_user(f->a, "tok-z", "zed");
	expect_user(f->a, tok, "yan");

	/* Refused: a bad name, a small buffer, a file others can read. */
	assert_int_equal(kb_tokens_create(f->path, "a,b", NULL, NULL, tok,
			     sizeof(tok), err, sizeof(err)),
	    KB_EINVAL);
	assert_int_equal(kb_tokens_create(f->path, "", NULL, NULL, tok,
			     sizeof(tok), err, sizeof(err)),
	    KB_EINVAL);
	assert_int_equal(kb_tokens_create(f->path, "x", NULL, "g\"", tok,
			     sizeof(tok), err, sizeof(err)),
	    KB_EINVAL);
	assert_int_equal(kb_tokens_create(f->path, "x", NULL, NULL, tok, 64,
			     err, sizeof(err)),
	    KB_EINVAL);
	assert_int_equal(chmod(f->path, 0644), 0);
	assert_int_equal(kb_tokens_create(f->path, "x", NULL, NULL, tok,
			     sizeof(tok), err, sizeof(err)),
	    KB_EFORBIDDEN);
	assert_non_null(strstr(err, "chmod 600"));

	/* Revoke rewrites it 0600 again, which also fixes the mode. */
	assert_int_equal(kb_tokens_revoke(f->path, "zed", err, sizeof(err)), 0);
	assert_int_equal(mode_of(f->path), 0600);

	/* Revoke refuses to rewrite a file it cannot read right. */
	write_file(f->path, "tok-a,alice\n", 0600);
	assert_int_equal(kb_tokens_revoke(f->path, "alice", err, sizeof(err)),
	    KB_EINVAL);
	assert_non_null(strstr(err, ":1: "));
}

/* --- the `auth` service -------------------------------------------------- */

struct captured {
	int calls;
	int code;
	char message[512];
	kb_body *body;
};

static struct captured cap;

/* The host's reply slot: keep what came and free the request, as the bus
 * does. */
static int fake_reply(kb_msg *req, kb_body *body, int code, const char *message)
{
	cap.calls++;
	cap.code = code;
	snprintf(cap.message, sizeof(cap.message), "%s",
	    message ? message : "");
	cap.body = body;
	kb_msg_free(req);
	return 0;
}

static const struct kb_host_api fake_api = {
	.size = sizeof(struct kb_host_api),
	.abi_major = KB_ABI_MAJOR,
	.abi_minor = KB_ABI_MINOR,
	.reply = fake_reply,
};

/* Send `op` with `body` to the handler; the reply lands in `cap`. */
static const msgpack_object *serve(struct kb_auth *a, const char *op,
    kb_body *body)
{
	kb_body_unref(cap.body);
	memset(&cap, 0, sizeof(cap));
	struct kb_ident *who =
	    ident("apiserver", "kubus:plugins", "kubus:kind:frontend");
	kb_msg *m =
	    kb_msg_new(KB_T_REQ, who, "auth", op, body ? body : kb_body_nil());
	kb_ident_unref(who);
	assert_non_null(m);
	m->api = &fake_api;
	kb_auth_serve(a, m);
	assert_int_equal(cap.calls, 1);
	return cap.code == 0 ? kb_body_obj(cap.body) : NULL;
}

static int serve_teardown(void **state)
{
	kb_body_unref(cap.body);
	memset(&cap, 0, sizeof(cap));
	return fx_teardown(state);
}

static void test_serve_authenticate(void **state)
{
	struct fx *f = *state;
	const char *groups[] = { "dev" };
	assert_int_equal(kb_auth_add_token(f->a, "s3cret", "alice", "u-1",
			     groups, 1),
	    0);

	const msgpack_object *o =
	    serve(f->a, "authenticate", kb_mp_body("{s:s}", "token", "s3cret"));
	assert_non_null(o);
	assert_true(kb_mp_streq(o, "user", "alice"));
	assert_true(kb_mp_streq(o, "uid", "u-1"));
	const msgpack_object *g = kb_mp_get(o, "groups");
	assert_non_null(g);
	assert_int_equal(g->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(g->via.array.size, 2);
	assert_true(kb_mp_streq(o, "groups[0]", "dev"));
	assert_true(kb_mp_streq(o, "groups[1]", "system:authenticated"));

	assert_null(
	    serve(f->a, "authenticate", kb_mp_body("{s:s}", "token", "wrong")));
	assert_int_equal(cap.code, KB_EUNAUTHORIZED);
	assert_null(strstr(cap.message, "wrong"));

	assert_null(
	    serve(f->a, "authenticate", kb_mp_body("{s:i}", "token", 42)));
	assert_int_equal(cap.code, KB_EINVAL);
	assert_string_equal(cap.message,
	    "authenticate expects {token: str}; token is an integer");

	assert_null(serve(f->a, "authenticate", kb_mp_body("[s]", "s3cret")));
	assert_int_equal(cap.code, KB_EINVAL);
	assert_string_equal(cap.message,
	    "authenticate expects {token: str}, got an array");

	/* A NUL inside a token is no token. */
	assert_null(serve(f->a, "authenticate",
	    kb_mp_body("{s:S}", "token", "s3cret\0x", (size_t)8)));
	assert_int_equal(cap.code, KB_EUNAUTHORIZED);
}

static void test_serve_authorize(void **state)
{
	struct fx *f = *state;
	const msgpack_object *o = serve(f->a, "authorize",
	    kb_mp_body("{s:s, s:[s], s:s, s:s, s:s, s:n, s:s, s:s}", "user",
		"admin", "groups", "system:masters", "verb", "delete",
		"apiGroup", "apps", "resource", "deployments", "subresource",
		"namespace", "default", "name", "web"));
	assert_non_null(o);
	bool allowed = false;
	assert_true(kb_mp_bool(o, "allowed", &allowed));
	assert_true(allowed);
	assert_true(kb_mp_streq(o, "reason", ""));

	o = serve(f->a, "authorize",
	    kb_mp_body("{s:s, s:[], s:s, s:s, s:s, s:s}", "user", "viewer",
		"groups", "verb", "create", "apiGroup", "", "resource", "pods",
		"namespace", "default"));
	assert_non_null(o);
	assert_true(kb_mp_bool(o, "allowed", &allowed));
	assert_false(allowed);
	assert_true(kb_mp_streq(o, "reason",
	    "User \"viewer\" cannot create resource \"pods\" in API group \"\" "
	    "in the namespace \"default\""));

	/* Optional fields may be left out. */
	o = serve(f->a, "authorize",
	    kb_mp_body("{s:s, s:s, s:s, s:s}", "user", "viewer", "verb", "get",
		"resource", "pods", "subresource", "log"));
	assert_non_null(o);
	assert_true(kb_mp_streq(o, "reason",
	    "User \"viewer\" cannot get resource \"pods/log\" in API group "
	    "\"\" at the cluster scope"));

	assert_null(serve(f->a, "authorize",
	    kb_mp_body("{s:s, s:s}", "user", "viewer", "verb", "get")));
	assert_int_equal(cap.code, KB_EINVAL);
	assert_string_equal(cap.message,
	    "authorize expects {user, groups, verb, apiGroup, resource, "
	    "subresource, namespace, name}: `resource` must be a non-empty "
	    "string, got nothing");

	assert_null(serve(f->a, "authorize",
	    kb_mp_body("{s:s, s:[i], s:s, s:s}", "user", "viewer", "groups", 1,
		"verb", "get", "resource", "pods")));
	assert_int_equal(cap.code, KB_EINVAL);
	assert_non_null(strstr(cap.message,
	    "`groups[0]` must be a string, got an integer"));

	assert_null(serve(f->a, "authorize",
	    kb_mp_body("{s:s, s:s, s:s, s:i}", "user", "viewer", "verb", "get",
		"resource", "pods", "namespace", 3)));
	assert_int_equal(cap.code, KB_EINVAL);
	assert_non_null(strstr(cap.message,
	    "`namespace` must be a string, got an integer"));

	assert_null(serve(f->a, "authorize", NULL));
	assert_int_equal(cap.code, KB_EINVAL);
	assert_non_null(strstr(cap.message, "got nil"));
}

static void test_serve_unknown_op(void **state)
{
	struct fx *f = *state;
	assert_null(serve(f->a, "whoami", NULL));
	assert_int_equal(cap.code, KB_EBADREQUEST);
	assert_string_equal(cap.message,
	    "the auth service has no op `whoami`; expected authenticate, "
	    "authorize or issue");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
#define TS(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, serve_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tokens_parse),
		T(test_tokens_malformed),
		T(test_tokens_mode_refused),
		T(test_tokens_missing_file),
		T(test_authenticate),
		T(test_tokens_reload_on_mtime),
		T(test_tokens_ephemeral),
		T(test_tokens_concurrent_reload),
		T(test_streq_ct_and_glob),
		T(test_acl_default),
		T(test_acl_config),
		T(test_acl_publish_memo),
		T(test_policy_errors),
		T(test_rbac_default),
		T(test_rbac_config),
		T(test_tokens_create_list_revoke),
		T(test_tokens_maintenance_edges),
		TS(test_serve_authenticate),
		TS(test_serve_authorize),
		TS(test_serve_unknown_op),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
