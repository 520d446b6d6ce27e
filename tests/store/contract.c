/* contract.c — the `store` contract (kubus/store.h), run through the bus
 * against one store plugin: `test-store-contract lmdb`, `… etcd`, or
 * `… etcd-tls` (store-etcd over mutual TLS to an etcd that requires client
 * certificates, plus t_tls_rejected: wrong TLS settings fail cleanly).
 *
 * One host per run; every test works under its own key prefix and reasons
 * about revisions relative to the one it starts at, so the same suite holds
 * for an LMDB store that starts at revision 0 and an etcd that starts at 1.
 * Compaction is the last test: it makes older revisions unreadable. */
#include <pthread.h>
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

#include <kubus/kubus.h>

#include "../harness.h"
#include "etcd_proc.h"

static const char *store_kind = "lmdb";
static bool tls;   /* etcd-tls */
static char *pki;  /* etcd-tls: etcd_pki_create()'s dir */
static struct etcd_cluster *etcd;
static struct kbt_host *host;
static kb_ctx *C;     /* frontend client: may call `store` */
static kb_ctx *other; /* plain plugin: may not */
static int test_no;
static char P[64]; /* this test's key prefix */

/* --- bodies ------------------------------------------------------------------ */

static void pk_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pk_bin(msgpack_packer *pk, const void *v, size_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, v, n);
}

#define BODY_BEGIN                                                             \
	msgpack_sbuffer sb;                                                    \
	msgpack_packer pk;                                                     \
	msgpack_sbuffer_init(&sb);                                             \
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write)
#define BODY_END                                                               \
	kb_body *b_ = kb_body_from_sbuf(&sb);                                  \
	msgpack_sbuffer_destroy(&sb);                                          \
	return b_

/* put {key, value, if_mod_rev (< 0: none), prev} */
static kb_body *b_put(const char *k, const void *v, size_t vlen, int64_t cond,
    bool prev)
{
	BODY_BEGIN;
	msgpack_pack_map(&pk, 2 + (cond >= 0) + prev);
	pk_str(&pk, "key");
	pk_str(&pk, k);
	pk_str(&pk, "value");
	pk_bin(&pk, v, vlen);
	if (cond >= 0) {
		pk_str(&pk, "if_mod_rev");
		msgpack_pack_int64(&pk, cond);
	}
	if (prev) {
		pk_str(&pk, "prev");
		msgpack_pack_true(&pk);
	}
	BODY_END;
}

static kb_body *b_del(const char *k, int64_t cond, bool prev)
{
	BODY_BEGIN;
	msgpack_pack_map(&pk, 1 + (cond >= 0) + prev);
	pk_str(&pk, "key");
	pk_str(&pk, k);
	if (cond >= 0) {
		pk_str(&pk, "if_mod_rev");
		msgpack_pack_int64(&pk, cond);
	}
	if (prev) {
		pk_str(&pk, "prev");
		msgpack_pack_true(&pk);
	}
	BODY_END;
}

static kb_body *b_get(const char *k, int64_t rev)
{
	return kb_mp_body("{s:s, s:I}", "key", k, "rev", rev);
}

struct rq {
	const char *prefix;
	int64_t limit;
	const char *cont;
	size_t contlen;
	bool count_only, keys_only;
	int64_t rev;
};

static kb_body *b_range(const struct rq *q)
{
	BODY_BEGIN;
	msgpack_pack_map(&pk, 6);
	pk_str(&pk, "prefix");
	pk_str(&pk, q->prefix);
	pk_str(&pk, "limit");
	msgpack_pack_int64(&pk, q->limit);
	pk_str(&pk, "continue");
	if (q->cont) {
		msgpack_pack_str(&pk, q->contlen);
		msgpack_pack_str_body(&pk, q->cont, q->contlen);
	} else {
		msgpack_pack_nil(&pk);
	}
	pk_str(&pk, "count_only");
	q->count_only ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
	pk_str(&pk, "keys_only");
	q->keys_only ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
	pk_str(&pk, "rev");
	msgpack_pack_int64(&pk, q->rev);
	BODY_END;
}

/* --- calls ---------------------------------------------------------------- */

static int call(const char *op, kb_body *body, kb_msg **rep)
{
	return kb_call(C, KB_STORE_SERVICE, op, body, 20000, rep);
}

/* Call and expect success; returns the reply (free with kb_msg_free). */
static kb_msg *ok(const char *op, kb_body *body)
{
	kb_msg *rep = NULL;
	int rc = call(op, body, &rep);
	if (rc) {
		const char *msg = "";
		if (rep)
			kb_msg_err(rep, &msg);
		fail_msg("%s: %s (%s)", op, kb_strerror(rc), msg);
	}
	return rep;
}

/* Call and expect error `want`; returns the error reply (may be NULL). */
static kb_msg *err(const char *op, kb_body *body, int want)
{
	kb_msg *rep = NULL;
	int rc = call(op, body, &rep);
	if (rc != want) {
		const char *msg = "";
		if (rep && rc)
			kb_msg_err(rep, &msg);
		fail_msg("%s: got %s (%s), wanted %s", op, kb_strerror(rc), msg,
		    kb_strerror(want));
	}
	return rep;
}

static int64_t iget(const kb_msg *m, const char *path)
{
	int64_t v = -1;
	if (!kb_mp_int(kb_msg_body(m), path, &v))
		fail_msg("no int at `%s`", path);
	return v;
}

static bool bget(const kb_msg *m, const char *path)
{
	bool v = false;
	if (!kb_mp_bool(kb_msg_body(m), path, &v))
		fail_msg("no bool at `%s`", path);
	return v;
}

static bool is_nil(const kb_msg *m, const char *path)
{
	const msgpack_object *o = kb_mp_get(kb_msg_body(m), path);
	return !o || o->type == MSGPACK_OBJECT_NIL;
}

/* The bin at path as a string (static buffer). */
static const char *vget(const msgpack_object *o, const char *path)
{
	static char buf[256];
	const msgpack_object *v = kb_mp_get(o, path);
	if (!v || v->type != MSGPACK_OBJECT_BIN)
		return NULL;
	snprintf(buf, sizeof buf, "%.*s", (int)v->via.bin.size, v->via.bin.ptr);
	return buf;
}

static int64_t revision(void)
{
	kb_msg *r = ok("revision", NULL);
	int64_t v = iget(r, "rev");
	kb_msg_free(r);
	return v;
}

static int64_t put(const char *k, const char *v)
{
	kb_msg *r = ok("put", b_put(k, v, strlen(v), -1, false));
	int64_t rev = iget(r, "rev");
	kb_msg_free(r);
	return rev;
}

static char *key(const char *suffix)
{
	static char bufs[8][128];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, 128, "%s%s", P, suffix);
	return b;
}

static int per_test(void **state)
{
	(void)state;
	snprintf(P, sizeof P, "/contract/%d/%d/", (int)getpid(), ++test_no);
	return 0;
}

/* --- tests --------------------------------------------------------------- */

static void t_put_get(void **state)
{
	int64_t r0 = revision(), rev;
	kb_msg *r;

	rev = put(key("a"), "one");
	assert_int_equal(rev, r0 + 1);
	r = ok("get", b_get(key("a"), 0));
	assert_string_equal(vget(kb_msg_body(r), "kv.value"), "one");
	assert_int_equal(iget(r, "kv.create_rev"), rev);
	assert_int_equal(iget(r, "kv.mod_rev"), rev);
	assert_int_equal(iget(r, "kv.version"), 1);
	assert_true(kb_mp_streq(kb_msg_body(r), "kv.key", key("a")));
	assert_int_equal(iget(r, "rev"), rev);
	kb_msg_free(r);

	/* the put reply: rev, kv without value, prev when asked */
	r = ok("put", b_put(key("a"), "two", 3, -1, true));
	assert_int_equal(iget(r, "rev"), rev + 1);
	assert_int_equal(iget(r, "kv.mod_rev"), rev + 1);
	assert_int_equal(iget(r, "kv.create_rev"), rev);
	assert_int_equal(iget(r, "kv.version"), 2);
	assert_null(kb_mp_get(kb_msg_body(r), "kv.value"));
	assert_string_equal(vget(kb_msg_body(r), "prev.value"), "one");
	assert_int_equal(iget(r, "prev.mod_rev"), rev);
	kb_msg_free(r);
	r = ok("put", b_put(key("new"), "x", 1, -1, true));
	assert_true(is_nil(r, "prev"));
	kb_msg_free(r);

	r = ok("get", b_get(key("missing"), 0));
	assert_true(is_nil(r, "kv"));
	assert_int_equal(iget(r, "rev"), rev + 2);
	kb_msg_free(r);

	/* binary values, empty values */
	const unsigned char bin[4] = { 0, 0xff, 0x80, 0 };
	kb_msg_free(ok("put", b_put(key("bin"), bin, 4, -1, false)));
	kb_msg_free(ok("put", b_put(key("empty"), "", 0, -1, false)));
	r = ok("get", b_get(key("bin"), 0));
	const msgpack_object *v = kb_mp_get(kb_msg_body(r), "kv.value");
	assert_non_null(v);
	assert_int_equal(v->type, MSGPACK_OBJECT_BIN);
	assert_int_equal(v->via.bin.size, 4);
	assert_memory_equal(v->via.bin.ptr, bin, 4);
	kb_msg_free(r);
	r = ok("get", b_get(key("empty"), 0));
	assert_false(is_nil(r, "kv"));
	assert_string_equal(vget(kb_msg_body(r), "kv.value"), "");
	kb_msg_free(r);

	/* revision op */
	r = ok("revision", kb_mp_body("{}"));
	assert_int_equal(iget(r, "rev"), rev + 4);
	assert_true(iget(r, "compact_rev") >= 0);
	kb_msg_free(r);
}

static void t_conditional_put(void **state)
{
	int64_t r0 = revision();
	kb_msg *r;

	/* 0: must not exist */
	r = ok("put", b_put(key("c"), "1", 1, 0, false));
	int64_t m1 = iget(r, "rev");
	assert_int_equal(m1, r0 + 1);
	kb_msg_free(r);
	r = err("put", b_put(key("c"), "2", 1, 0, false), KB_ECONFLICT);
	assert_non_null(r);
	assert_int_equal(iget(r, "kv.mod_rev"), m1);
	assert_string_equal(vget(kb_msg_body(r), "kv.value"), "1");
	assert_int_equal(iget(r, "rev"), m1);
	kb_msg_free(r);
	/* N: mod_rev must be N */
	r = err("put", b_put(key("c"), "2", 1, m1 + 100, false), KB_ECONFLICT);
	kb_msg_free(r);
	r = err("put", b_put(key("absent"), "2", 1, 5, false), KB_ECONFLICT);
	assert_true(is_nil(r, "kv"));
	kb_msg_free(r);
	assert_int_equal(revision(), m1); /* nothing changed */
	r = ok("put", b_put(key("c"), "2", 1, m1, false));
	assert_int_equal(iget(r, "rev"), m1 + 1);
	kb_msg_free(r);
	r = ok("get", b_get(key("c"), 0));
	assert_string_equal(vget(kb_msg_body(r), "kv.value"), "2");
	assert_int_equal(iget(r, "kv.version"), 2);
	kb_msg_free(r);
}

static void t_delete(void **state)
{
	int64_t rev = put(key("d"), "v"), r0;
	kb_msg *r;

	/* a missing key: deleted 0, revision unchanged */
	r0 = revision();
	r = ok("delete", b_del(key("nope"), -1, false));
	assert_int_equal(iget(r, "deleted"), 0);
	assert_int_equal(iget(r, "rev"), r0);
	kb_msg_free(r);
	assert_int_equal(revision(), r0);
	/* with a failing condition: Conflict with the current value */
	r = err("delete", b_del(key("d"), rev + 50, false), KB_ECONFLICT);
	assert_int_equal(iget(r, "kv.mod_rev"), rev);
	kb_msg_free(r);
	r = err("delete", b_del(key("nope"), 3, false), KB_ECONFLICT);
	assert_true(is_nil(r, "kv"));
	kb_msg_free(r);
	/* the right condition, with prev */
	r = ok("delete", b_del(key("d"), rev, true));
	assert_int_equal(iget(r, "deleted"), 1);
	assert_int_equal(iget(r, "rev"), r0 + 1);
	assert_string_equal(vget(kb_msg_body(r), "prev.value"), "v");
	kb_msg_free(r);
	r = ok("get", b_get(key("d"), 0));
	assert_true(is_nil(r, "kv"));
	kb_msg_free(r);
	/* recreated: a new life */
	int64_t r2 = put(key("d"), "again");
	r = ok("get", b_get(key("d"), 0));
	assert_int_equal(iget(r, "kv.create_rev"), r2);
	assert_int_equal(iget(r, "kv.version"), 1);
	kb_msg_free(r);
}

static void t_get_at_revision(void **state)
{
	int64_t r1 = put(key("h"), "v1");
	int64_t r2 = put(key("h"), "v2");
	kb_msg *r;

	kb_msg_free(ok("delete", b_del(key("h"), -1, false)));
	r = ok("get", b_get(key("h"), r1));
	assert_string_equal(vget(kb_msg_body(r), "kv.value"), "v1");
	assert_int_equal(iget(r, "kv.mod_rev"), r1);
	assert_int_equal(iget(r, "kv.version"), 1);
	assert_int_equal(iget(r, "rev"), r1);
	kb_msg_free(r);
	r = ok("get", b_get(key("h"), r2));
	assert_string_equal(vget(kb_msg_body(r), "kv.value"), "v2");
	kb_msg_free(r);
	r = ok("get", b_get(key("h"), r2 + 1));
	assert_true(is_nil(r, "kv"));
	kb_msg_free(r);
	r = ok("get", b_get(key("h"), r1 - 1));
	assert_true(is_nil(r, "kv"));
	kb_msg_free(r);
	kb_msg_free(err("get", b_get(key("h"), revision() + 1000), KB_EINVAL));
}

static void t_range(void **state)
{
	char k[128];
	kb_msg *r;
	int64_t rev0;

	/* neighbours that must not show: a longer sibling prefix */
	put(key("zz"), "x");
	snprintf(k, sizeof k, "%.*sx/a", (int)strlen(P) - 1, P);
	put(k, "outside");
	for (int i = 0; i < 7; i++) {
		char kk[16], vv[16];
		snprintf(kk, sizeof kk, "r/%02d", i);
		snprintf(vv, sizeof vv, "v%d", i);
		put(key(kk), vv);
	}
	rev0 = revision();
	struct rq q = { .prefix = key("r/") };
	r = ok("range", b_range(&q));
	assert_int_equal(iget(r, "count"), 7);
	assert_false(bget(r, "more"));
	assert_true(is_nil(r, "continue"));
	assert_int_equal(iget(r, "rev"), rev0);
	const msgpack_object *kvs = kb_mp_get(kb_msg_body(r), "kvs");
	assert_non_null(kvs);
	assert_int_equal(kvs->via.array.size, 7);
	for (int i = 0; i < 7; i++) {
		char want[128], wv[16];
		snprintf(want, sizeof want, "%sr/%02d", P, i);
		snprintf(wv, sizeof wv, "v%d", i);
		assert_true(kb_mp_streq(&kvs->via.array.ptr[i], "key", want));
		assert_string_equal(vget(&kvs->via.array.ptr[i], "value"), wv);
	}
	kb_msg_free(r);

	/* pages of 3 with continue, at the first page's revision */
	q.limit = 3;
	r = ok("range", b_range(&q));
	assert_int_equal(iget(r, "count"), 7);
	assert_true(bget(r, "more"));
	kvs = kb_mp_get(kb_msg_body(r), "kvs");
	assert_int_equal(kvs->via.array.size, 3);
	const char *c;
	size_t clen;
	assert_true(kb_mp_str(kb_msg_body(r), "continue", &c, &clen));
	char cont[256];
	snprintf(cont, sizeof cont, "%.*s", (int)clen, c);
	kb_msg_free(r);
	/* changes after the first page do not show in later pages */
	put(key("r/03"), "changed");
	put(key("r/99"), "late");
	kb_msg_free(ok("delete", b_del(key("r/05"), -1, false)));
	int seen = 3, pages = 1;
	for (;;) {
		struct rq q2 = { .prefix = key("r/"),
			.limit = 3,
			.cont = cont,
			.contlen = strlen(cont) };
		r = ok("range", b_range(&q2));
		kvs = kb_mp_get(kb_msg_body(r), "kvs");
		assert_int_equal(iget(r, "rev"), rev0);
		for (uint32_t i = 0; i < kvs->via.array.size; i++) {
			char want[128], wv[16];
			snprintf(want, sizeof want, "%sr/%02d", P, seen);
			snprintf(wv, sizeof wv, "v%d", seen);
			assert_true(
			    kb_mp_streq(&kvs->via.array.ptr[i], "key", want));
			assert_string_equal(vget(&kvs->via.array.ptr[i],
						"value"),
			    wv);
			seen++;
		}
		pages++;
		bool more = bget(r, "more");
		if (more) {
			assert_true(
			    kb_mp_str(kb_msg_body(r), "continue", &c, &clen));
			snprintf(cont, sizeof cont, "%.*s", (int)clen, c);
		}
		kb_msg_free(r);
		if (!more)
			break;
	}
	assert_int_equal(seen, 7);
	assert_int_equal(pages, 3);

	/* now: 7 keys (r/05 gone, r/99 new); keys_only; count_only */
	struct rq q3 = { .prefix = key("r/"), .keys_only = true };
	r = ok("range", b_range(&q3));
	kvs = kb_mp_get(kb_msg_body(r), "kvs");
	assert_int_equal(kvs->via.array.size, 7);
	assert_null(kb_mp_get(&kvs->via.array.ptr[0], "value"));
	assert_non_null(kb_mp_get(&kvs->via.array.ptr[0], "mod_rev"));
	kb_msg_free(r);
	struct rq q4 = { .prefix = key("r/"), .count_only = true };
	r = ok("range", b_range(&q4));
	assert_int_equal(iget(r, "count"), 7);
	kvs = kb_mp_get(kb_msg_body(r), "kvs");
	assert_true(!kvs || kvs->via.array.size == 0);
	kb_msg_free(r);
	/* at a revision */
	struct rq q5 = { .prefix = key("r/"), .rev = rev0 };
	r = ok("range", b_range(&q5));
	assert_int_equal(iget(r, "count"), 7);
	kvs = kb_mp_get(kb_msg_body(r), "kvs");
	assert_string_equal(vget(&kvs->via.array.ptr[3], "value"), "v3");
	assert_string_equal(vget(&kvs->via.array.ptr[5], "value"), "v5");
	kb_msg_free(r);
	/* the whole prefix: the sibling stays out */
	struct rq q6 = { .prefix = P };
	r = ok("range", b_range(&q6));
	assert_int_equal(iget(r, "count"), 8);
	kb_msg_free(r);
	/* a future revision */
	struct rq q7 = { .prefix = P, .rev = revision() + 100 };
	kb_msg_free(err("range", b_range(&q7), KB_EINVAL));
}

/* txn body: compares and ops given as msgpack via kb_mp_body format */
static void t_txn(void **state)
{
	int64_t ra = put(key("ta"), "a1"), rb;
	kb_msg *r;

	(void)rb;
	/* all compares hold: success ops, one revision for both puts */
	r = ok("txn",
	    kb_mp_body("{s:[{s:s, s:s, s:s, s:I}, {s:s, s:s, s:s, s:b}, "
		       "    {s:s, s:s, s:s, s:I}, {s:s, s:s, s:s, s:I}],"
		       " s:[{s:{s:s, s:r}}, {s:{s:s, s:r}}, {s:{s:s}}, {s:{s:s}}],"
		       " s:[{s:{s:s}}]}",
		"compare", "key", key("ta"), "target", "mod", "op", "=",
		"value", ra, "key", key("tb"), "target", "exists", "op", "=",
		"value", 0, "key", key("ta"), "target", "version", "op", "<",
		"value", (int64_t)2, "key", key("ta"), "target", "create", "op",
		">", "value", (int64_t)0, "success", "put", "key", key("ta"),
		"value",
		"\xc4\x02"
		"a2",
		(size_t)4, "put", "key", key("tb"), "value",
		"\xc4\x02"
		"b1",
		(size_t)4, "get", "key", key("ta"), "delete", "key",
		key("nope"), "failure", "get", "key", key("ta")));
	assert_true(bget(r, "succeeded"));
	int64_t rev = iget(r, "rev");
	assert_int_equal(rev, ra + 1);
	const msgpack_object *res = kb_mp_get(kb_msg_body(r), "results");
	assert_non_null(res);
	assert_int_equal(res->via.array.size, 4);
	int64_t x;
	assert_true(kb_mp_int(&res->via.array.ptr[0], "put.rev", &x));
	assert_int_equal(x, rev);
	assert_true(kb_mp_int(&res->via.array.ptr[1], "put.rev", &x));
	assert_int_equal(x, rev);
	assert_string_equal(vget(&res->via.array.ptr[2], "get.kv.value"), "a2");
	assert_true(kb_mp_int(&res->via.array.ptr[3], "delete.deleted", &x));
	assert_int_equal(x, 0);
	kb_msg_free(r);

	/* a compare fails: failure ops, no new revision */
	r = ok("txn",
	    kb_mp_body("{s:[{s:s, s:s, s:s, s:I}], s:[{s:{s:s}}], s:[{s:{s:s}}]}",
		"compare", "key", key("ta"), "target", "mod", "op", "=",
		"value", ra, "success", "delete", "key", key("ta"), "failure",
		"get", "key", key("tb")));
	assert_false(bget(r, "succeeded"));
	assert_int_equal(iget(r, "rev"), rev);
	res = kb_mp_get(kb_msg_body(r), "results");
	assert_int_equal(res->via.array.size, 1);
	assert_string_equal(vget(&res->via.array.ptr[0], "get.kv.value"), "b1");
	kb_msg_free(r);
	assert_int_equal(revision(), rev);

	/* delete in a txn: deleted and prev */
	r = ok("txn",
	    kb_mp_body("{s:[{s:s, s:s, s:s, s:b}], s:[{s:{s:s}}]}", "compare",
		"key", key("tb"), "target", "exists", "op", "=", "value", 1,
		"success", "delete", "key", key("tb")));
	assert_true(bget(r, "succeeded"));
	assert_int_equal(iget(r, "rev"), rev + 1);
	res = kb_mp_get(kb_msg_body(r), "results");
	assert_true(kb_mp_int(&res->via.array.ptr[0], "delete.deleted", &x));
	assert_int_equal(x, 1);
	assert_string_equal(vget(&res->via.array.ptr[0], "delete.prev.value"),
	    "b1");
	kb_msg_free(r);

	/* a txn that writes nothing takes no revision */
	r = ok("txn",
	    kb_mp_body("{s:[], s:[{s:{s:s}}], s:[]}", "compare", "success",
		"get", "key", key("ta"), "failure"));
	assert_true(bget(r, "succeeded"));
	assert_int_equal(iget(r, "rev"), rev + 1);
	kb_msg_free(r);
}

static void t_invalid(void **state)
{
	int64_t r0 = revision();
	kb_msg *r;
	char *big;
	size_t limit = KB_STORE_VALUE_MAX_DEFAULT;

	kb_msg_free(err("put", b_put("", "v", 1, -1, false), KB_EINVAL));
	kb_msg_free(err("put",
	    kb_mp_body("{s:i, s:r}", "key", 7, "value", "\xc4\x01v", (size_t)3),
	    KB_EINVAL));
	/* a str value instead of bin */
	kb_msg_free(err("put",
	    kb_mp_body("{s:s, s:s}", "key", key("s"), "value", "text"),
	    KB_EINVAL));
	kb_msg_free(
	    err("put", kb_mp_body("{s:s}", "key", key("s")), KB_EINVAL));
	kb_msg_free(err("get", kb_mp_body("{s:s}", "key", ""), KB_EINVAL));
	kb_msg_free(err("delete", kb_mp_body("{s:n}", "key"), KB_EINVAL));
	kb_msg_free(err("put", kb_mp_body("[s]", "x"), KB_EINVAL));
	/* txn with one bad op: nothing happens */
	kb_msg_free(err("txn",
	    kb_mp_body("{s:[{s:{s:s, s:r}}, {s:{s:s, s:r}}]}", "success", "put",
		"key", key("ok"), "value", "\xc4\x01v", (size_t)3, "put", "key",
		"", "value", "\xc4\x01v", (size_t)3),
	    KB_EINVAL));
	/* the value limit, exactly and one over */
	big = malloc(limit + 1);
	memset(big, 'x', limit + 1);
	kb_msg_free(err("put", b_put(key("big"), big, limit + 1, -1, false),
	    KB_EINVAL));
	assert_int_equal(revision(), r0);
	r = ok("put", b_put(key("big"), big, limit, -1, false));
	kb_msg_free(r);
	r = ok("get", b_get(key("big"), 0));
	const msgpack_object *v = kb_mp_get(kb_msg_body(r), "kv.value");
	assert_int_equal(v->via.bin.size, limit);
	kb_msg_free(r);
	free(big);
	assert_int_equal(revision(), r0 + 1);
}

static void ignore_pub(void *arg, const kb_msg *m)
{
	(void)arg;
	(void)m;
}

static void t_forbidden(void **state)
{
	kb_msg *rep = NULL;
	int rc = kb_call(other, KB_STORE_SERVICE, "revision", NULL, 5000, &rep);
	assert_int_equal(rc, KB_EFORBIDDEN);
	kb_msg_free(rep);
	rep = NULL;
	rc = kb_call(other, KB_STORE_SERVICE, "put",
	    b_put(key("x"), "v", 1, -1, false), 5000, &rep);
	assert_int_equal(rc, KB_EFORBIDDEN);
	kb_msg_free(rep);
	/* and it may not listen to store topics */
	assert_int_equal(kb_subscribe(other, "store/sneaky/*", ignore_pub,
			     NULL),
	    KB_EFORBIDDEN);
}

/* --- watch --------------------------------------------------------------- */

/* One watcher as the test sees it: every event received, checked as it
 * comes. */
struct wstate {
	int64_t next_rev; /* events must not go below this */
	int64_t last_rev;
	int n, dup_or_back, errors;
	char last[96];
	bool last_has_prev;
	char last_prev[64];
	int64_t *revs; /* optional log */
	int nrevs, cap;
};

struct wset {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int nw;
	struct wstate *w;
	char topic_prefix[64];
	long total;
};

static void on_pub(void *arg, const kb_msg *m)
{
	struct wset *s = arg;
	const char *dst = kb_msg_dst(m);
	const msgpack_object *b = kb_msg_body(m), *evs;
	int i;

	if (strncmp(dst, s->topic_prefix, strlen(s->topic_prefix)))
		return;
	i = atoi(dst + strlen(s->topic_prefix));
	if (i < 0 || i >= s->nw)
		return;
	pthread_mutex_lock(&s->mu);
	struct wstate *w = &s->w[i];
	evs = kb_mp_get(b, "events");
	if (!evs || evs->type != MSGPACK_OBJECT_ARRAY) {
		w->errors++;
	} else {
		for (uint32_t j = 0; j < evs->via.array.size; j++) {
			const msgpack_object *e = &evs->via.array.ptr[j];
			int64_t mr = -1;
			const char *k = "";
			size_t kl = 0;
			kb_mp_int(e, "kv.mod_rev", &mr);
			kb_mp_str(e, "kv.key", &k, &kl);
			if (mr < w->last_rev || mr < w->next_rev)
				w->dup_or_back++;
			w->last_rev = mr;
			const msgpack_object *val = kb_mp_get(e, "kv.value");
			snprintf(w->last, sizeof w->last, "%s %.*s=%.*s",
			    kb_mp_streq(e, "type", "put") ? "put" : "delete",
			    (int)kl, k,
			    val && val->type == MSGPACK_OBJECT_BIN ?
				(int)val->via.bin.size :
				0,
			    val && val->type == MSGPACK_OBJECT_BIN ?
				val->via.bin.ptr :
				"");
			const msgpack_object *pv = kb_mp_get(e, "prev");
			w->last_has_prev = pv && pv->type == MSGPACK_OBJECT_MAP;
			w->last_prev[0] = 0;
			if (w->last_has_prev) {
				const msgpack_object *pvv =
				    kb_mp_get(pv, "value");
				if (pvv && pvv->type == MSGPACK_OBJECT_BIN)
					snprintf(w->last_prev,
					    sizeof w->last_prev, "%.*s",
					    (int)pvv->via.bin.size,
					    pvv->via.bin.ptr);
			}
			if (w->revs) {
				if (w->nrevs == w->cap) {
					w->cap = w->cap ? w->cap * 2 : 64;
					w->revs = realloc(w->revs,
					    (size_t)w->cap * sizeof *w->revs);
				}
				w->revs[w->nrevs++] = mr;
			}
			w->n++;
			s->total++;
		}
	}
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static struct wset *wset_new(int nw, bool log)
{
	struct wset *s = calloc(1, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->nw = nw;
	s->w = calloc((size_t)nw, sizeof *s->w);
	if (log)
		for (int i = 0; i < nw; i++)
			s->w[i].cap = 0, s->w[i].revs = malloc(8);
	static int wset_no;
	snprintf(s->topic_prefix, sizeof s->topic_prefix,
	    "store/contract/%d/%d/", (int)getpid(), ++wset_no);
	char pat[80];
	snprintf(pat, sizeof pat, "%s*", s->topic_prefix);
	assert_int_equal(kb_subscribe(C, pat, on_pub, s), 0);
	return s;
}

static void wset_free(struct wset *s)
{
	char pat[80];
	snprintf(pat, sizeof pat, "%s*", s->topic_prefix);
	kb_unsubscribe(C, pat);
	usleep(20000); /* let a delivery in flight finish */
	for (int i = 0; i < s->nw; i++)
		free(s->w[i].revs);
	free(s->w);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

/* Ask for a watch; returns its id (or -code on error). */
static int64_t watch(struct wset *s, int i, const char *prefix, int64_t rev,
    bool prev, kb_msg **rep_out)
{
	char topic[96];
	kb_msg *rep = NULL;
	snprintf(topic, sizeof topic, "%s%d", s->topic_prefix, i);
	s->w[i].next_rev = rev;
	int rc = call("watch",
	    kb_mp_body("{s:s, s:I, s:b, s:s}", "prefix", prefix, "rev", rev,
		"prev", prev, "topic", topic),
	    &rep);
	int64_t id = rc ? -rc : iget(rep, "watch_id");
	if (rep_out)
		*rep_out = rep;
	else
		kb_msg_free(rep);
	return id;
}

static bool wait_total(struct wset *s, long want, int ms)
{
	struct timespec ts;
	bool okk;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (
	    s->total < want && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
		;
	okk = s->total >= want;
	pthread_mutex_unlock(&s->mu);
	return okk;
}

static void unwatch(int64_t id)
{
	kb_msg_free(ok("unwatch", kb_mp_body("{s:I}", "watch_id", id)));
}

static void t_watch(void **state)
{
	struct wset *s = wset_new(2, true);
	kb_msg *rep;
	int64_t id0 = watch(s, 0, key("w/"), 0, true, &rep);
	int64_t id1 = watch(s, 1, key("w/b"), 0, false, NULL);
	assert_true(id0 > 0 && id1 > 0 && id0 != id1);
	int64_t at = iget(rep, "rev");
	kb_msg_free(rep);
	assert_true(at >= 0);

	int64_t r1 = put(key("w/a"), "1");
	put(key("other"), "x");
	int64_t r3 = put(key("w/a"), "2");
	put(key("w/b"), "3");
	kb_msg_free(ok("delete", b_del(key("w/a"), -1, false)));
	assert_true(wait_total(s, 5, 10000));
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->w[0].n, 4);
	assert_int_equal(s->w[0].dup_or_back, 0);
	assert_int_equal(s->w[0].revs[0], r1);
	assert_int_equal(s->w[0].revs[1], r3);
	char want[96];
	snprintf(want, sizeof want, "delete %sw/a=", P);
	assert_string_equal(s->w[0].last, want);
	assert_true(s->w[0].last_has_prev);
	assert_string_equal(s->w[0].last_prev, "2");
	assert_int_equal(s->w[1].n, 1);
	snprintf(want, sizeof want, "put %sw/b=3", P);
	assert_string_equal(s->w[1].last, want);
	assert_false(s->w[1].last_has_prev);
	pthread_mutex_unlock(&s->mu);

	/* unwatch: nothing more arrives; an unknown id is NotFound */
	unwatch(id1);
	kb_msg *rep2 = NULL;
	int urc = call("unwatch", kb_mp_body("{s:I}", "watch_id", id1), &rep2);
	assert_int_equal(urc, KB_ENOTFOUND);
	kb_msg_free(rep2);
	put(key("w/b"), "4");
	assert_true(wait_total(s, 6, 10000));
	usleep(100000);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->w[1].n, 1);
	assert_int_equal(s->w[0].n, 5);
	pthread_mutex_unlock(&s->mu);
	unwatch(id0);

	/* a txn's changes share one revision and arrive together, in order */
	{
		struct wset *s3 = wset_new(1, true);
		int64_t id3 = watch(s3, 0, key("t/"), 0, false, NULL);
		kb_msg *tr = ok("txn",
		    kb_mp_body("{s:[{s:{s:s, s:r}}, {s:{s:s, s:r}}]}",
			"success", "put", "key", key("t/x"), "value",
			"\xc4\x01x", (size_t)3, "put", "key", key("t/y"),
			"value", "\xc4\x01y", (size_t)3));
		int64_t trev = iget(tr, "rev");
		kb_msg_free(tr);
		assert_true(wait_total(s3, 2, 10000));
		pthread_mutex_lock(&s3->mu);
		assert_int_equal(s3->w[0].n, 2);
		assert_int_equal(s3->w[0].revs[0], trev);
		assert_int_equal(s3->w[0].revs[1], trev);
		char want3[96];
		snprintf(want3, sizeof want3, "put %st/y=y", P);
		assert_string_equal(s3->w[0].last, want3);
		pthread_mutex_unlock(&s3->mu);
		unwatch(id3);
		wset_free(s3);
	}

	/* from a past revision: the history first, then live, in order */
	struct wset *s2 = wset_new(1, true);
	int64_t id2 = watch(s2, 0, key("w/"), r3, true, NULL);
	assert_true(id2 > 0);
	int64_t r9 = put(key("w/c"), "9");
	assert_true(wait_total(s2, 4, 10000)); /* r3, b=3, delete a, b=4, c */
	assert_true(wait_total(s2, 5, 10000));
	pthread_mutex_lock(&s2->mu);
	assert_int_equal(s2->w[0].revs[0], r3);
	assert_int_equal(s2->w[0].revs[4], r9);
	assert_int_equal(s2->w[0].dup_or_back, 0);
	pthread_mutex_unlock(&s2->mu);
	usleep(100000);
	assert_int_equal(s2->w[0].n, 5);
	unwatch(id2);
	wset_free(s2);
	wset_free(s);

	kb_msg_free(err("watch",
	    kb_mp_body("{s:s, s:I}", "prefix", P, "rev", (int64_t)0),
	    KB_EINVAL)); /* no topic */
}

/* 1,000 watchers on one prefix under concurrent writers; half join from a
 * past revision while the writes go on. Each must see every event once, in
 * order. */
enum {
	NWATCH = 1000,
	NWRITERS = 4,
	NPUTS = 40
};

struct wr {
	int id;
	int64_t revs[NPUTS];
};

static void *writer(void *arg)
{
	struct wr *w = arg;
	char k[128], v[32];
	for (int i = 0; i < NPUTS; i++) {
		snprintf(k, sizeof k, "%sm/%d/%d", P, w->id, i % 5);
		snprintf(v, sizeof v, "%d.%d", w->id, i);
		w->revs[i] = put(k, v);
		usleep(2000);
	}
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void t_watch_many(void **state)
{
	struct wset *s = wset_new(NWATCH, true);
	static int64_t ids[NWATCH];
	pthread_t th[NWRITERS];
	struct wr wr[NWRITERS];
	int64_t start = revision() + 1;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < NWATCH / 2; i++)
		assert_true(
		    (ids[i] = watch(s, i, key("m/"), 0, false, NULL)) > 0);
	/* writes begin before the other half joins; they start at `start`
	 * (a past revision by the time they register), so they replay */
	int64_t first_live = revision() + 1;
	for (int i = NWATCH / 2; i < NWATCH; i++)
		s->w[i].next_rev = start;
	for (int i = 0; i < NWRITERS; i++) {
		wr[i].id = i;
		pthread_create(&th[i], NULL, writer, &wr[i]);
	}
	for (int i = NWATCH / 2; i < NWATCH; i++)
		assert_true(
		    (ids[i] = watch(s, i, key("m/"), start, false, NULL)) > 0);
	for (int i = 0; i < NWRITERS; i++)
		pthread_join(th[i], NULL);
	int64_t all[NWRITERS * NPUTS];
	for (int i = 0; i < NWRITERS; i++)
		memcpy(all + i * NPUTS, wr[i].revs, sizeof wr[i].revs);
	qsort(all, NWRITERS * NPUTS, sizeof all[0], cmp64);
	long want = (long)NWATCH * NWRITERS * NPUTS;
	bool done = wait_total(s, want, 60000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("%d watchers x %d events: %ld delivered in %.2f s\n",
	    NWATCH, NWRITERS * NPUTS, s->total,
	    (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	assert_true(done);
	usleep(50000);
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < NWATCH; i++) {
		struct wstate *w = &s->w[i];
		if (w->dup_or_back || w->n != NWRITERS * NPUTS || w->errors)
			fail_msg("watcher %d: %d events (want %d), %d out of "
				 "order, %d errors",
			    i, w->n, NWRITERS * NPUTS, w->dup_or_back,
			    w->errors);
		for (int j = 0; j < w->n; j++)
			if (w->revs[j] != all[j])
				fail_msg("watcher %d: event %d at rev %lld, "
					 "want %lld",
				    i, j, (long long)w->revs[j],
				    (long long)all[j]);
	}
	pthread_mutex_unlock(&s->mu);
	(void)first_live;
	for (int i = 0; i < NWATCH; i++)
		unwatch(ids[i]);
	wset_free(s);
}

/* Last: compaction makes older revisions unreadable. */
static void t_compact(void **state)
{
	int64_t r1 = put(key("k"), "1");
	int64_t r2 = put(key("k"), "2");
	int64_t r3 = put(key("k"), "3");
	kb_msg *r;

	r = ok("compact", kb_mp_body("{s:I}", "rev", r2));
	assert_int_equal(iget(r, "compact_rev"), r2);
	kb_msg_free(r);
	r = ok("revision", NULL);
	assert_int_equal(iget(r, "compact_rev"), r2);
	assert_int_equal(iget(r, "rev"), r3);
	kb_msg_free(r);
	r = err("get", b_get(key("k"), r1), KB_EEXPIRED);
	kb_msg_free(r);
	r = ok("get", b_get(key("k"), r2));
	assert_string_equal(vget(kb_msg_body(r), "kv.value"), "2");
	kb_msg_free(r);
	struct rq q = { .prefix = P, .rev = r1 };
	kb_msg_free(err("range", b_range(&q), KB_EEXPIRED));
	/* a watch from at or below the compact revision: Expired, with it */
	struct wset *s = wset_new(1, false);
	kb_msg *rep;
	int64_t id = watch(s, 0, P, r2, false, &rep);
	if (id != -KB_EEXPIRED)
		fail_msg("watch from compact_rev %lld: got %s, but store.h says "
			 "rev <= compact_rev is Expired",
		    (long long)r2, id > 0 ? "a watch" : kb_strerror((int)-id));
	if (rep && !is_nil(rep, "compact_rev"))
		assert_int_equal(iget(rep, "compact_rev"), r2);
	kb_msg_free(rep);
	id = watch(s, 0, P, r3, false, NULL);
	assert_true(id > 0);
	assert_true(wait_total(s, 1, 10000));
	unwatch(id);
	wset_free(s);
	kb_msg_free(
	    err("compact", kb_mp_body("{s:I}", "rev", r3 + 1000), KB_EINVAL));
	kb_msg_free(err("compact", kb_mp_body("{}"), KB_EINVAL));
}

/* etcd-tls only: store-etcd with TLS settings that cannot work against the
 * cluster. The host starts (etcd may come up later), but every op fails
 * within retry_timeout with Unavailable and a message that names TLS —
 * never "outcome unknown", since the server never saw the request — and
 * nothing is written. A cert without its key does not start at all. */
static void t_tls_rejected(void **state)
{
	static const struct {
		const char *what, *cacert;
		bool client_cert;
	} cases[] = {
		{ "no client certificate", ETCD_PKI_CA, false },
		{ "a CA that did not sign the server", ETCD_PKI_OTHER_CA, true },
	};
	const char *fe[] = { "kubus:plugins", "kubus:kind:frontend" };
	char yaml[4096], err_[1024];
	(void)state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char certs[1200] = "";
		if (cases[i].client_cert)
			snprintf(certs, sizeof certs,
			    "      cert: %s/" ETCD_PKI_CLIENT_CERT "\n"
			    "      key: %s/" ETCD_PKI_CLIENT_KEY "\n",
			    pki, pki);
		snprintf(yaml, sizeof yaml,
		    "plugins:\n"
		    "  - name: store\n"
		    "    use: store-etcd\n"
		    "    config:\n"
		    "      endpoints: [%s]\n"
		    "      cacert: %s/%s\n"
		    "%s"
		    "      dial_timeout: 1s\n"
		    "      request_timeout: 2s\n"
		    "      retry_timeout: 500ms\n"
		    "      workers: 2\n",
		    etcd_cluster_endpoints(etcd), pki, cases[i].cacert, certs);
		struct kbt_host *h = kbt_host_start(yaml, err_, sizeof err_);
		if (!h)
			fail_msg("%s: the host did not start: %s", cases[i].what,
			    err_);
		kb_ctx *c = kbt_client(h, "tls-tester", "plugin:tls-tester", fe,
		    2);
		/* The first failure, reported once the host is stopped. */
		char bad[1024] = "";
		if (!c)
			snprintf(bad, sizeof bad, "no client");

		char k[128];
		snprintf(k, sizeof k, "%s%zu", P, i);
		struct {
			const char *op;
			kb_body *body;
		} calls[] = {
			{ "revision", NULL },
			{ "put", b_put(k, "v", 1, -1, false) },
			{ "txn", kb_mp_body("{s:[{s:{s:s, s:r}}]}", "success",
			    "put", "key", k, "value", "\xc4\x01v", (size_t)3) },
			{ "watch", kb_mp_body("{s:s, s:I, s:s}", "prefix", k,
			    "rev", (int64_t)0, "topic", "store/tls-rejected") },
		};
		for (size_t j = 0; j < sizeof calls / sizeof calls[0]; j++) {
			if (bad[0]) {
				kb_body_unref(calls[j].body);
				continue;
			}
			struct timespec t0, t1;
			kb_msg *rep = NULL;
			const char *msg = "";
			clock_gettime(CLOCK_MONOTONIC, &t0);
			int rc = kb_call(c, KB_STORE_SERVICE, calls[j].op,
			    calls[j].body, 20000, &rep);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			double secs = (double)(t1.tv_sec - t0.tv_sec) +
			    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
			if (rep && rc)
				kb_msg_err(rep, &msg);
			print_message("%s: %s -> %s in %.2f s: %s\n",
			    cases[i].what, calls[j].op, kb_strerror(rc), secs,
			    msg);
			if (rc != KB_EUNAVAILABLE || !strstr(msg, "TLS"))
				snprintf(bad, sizeof bad, "%s: %s: got %s (%s), "
				    "wanted Unavailable naming TLS",
				    cases[i].what, calls[j].op, kb_strerror(rc),
				    msg);
			/* retry_timeout is 0.5 s; the caller's deadline 20 s */
			else if (secs > 5)
				snprintf(bad, sizeof bad, "%s: %s took %.1f s",
				    cases[i].what, calls[j].op, secs);
			kb_msg_free(rep);
		}
		kbt_host_stop(h);
		if (bad[0])
			fail_msg("%s", bad);

		/* nothing was written */
		kb_msg *r = ok("get", b_get(k, 0));
		assert_true(is_nil(r, "kv"));
		kb_msg_free(r);
	}

	/* cert without key: refused at startup, no request needed */
	snprintf(yaml, sizeof yaml,
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-etcd\n"
	    "    config:\n"
	    "      endpoints: [%s]\n"
	    "      cacert: %s/" ETCD_PKI_CA "\n"
	    "      cert: %s/" ETCD_PKI_CLIENT_CERT "\n",
	    etcd_cluster_endpoints(etcd), pki, pki);
	struct kbt_host *h = kbt_host_start(yaml, err_, sizeof err_);
	if (h) {
		kbt_host_stop(h);
		fail_msg("a cert without its key: the host started");
	}
	assert_non_null(strstr(err_, "`cert` and `key`"));
}

/* --- setup ---------------------------------------------------------------- */

static int suite_setup(void **state)
{
	char err_[1024], yaml[4096];
	(void)state;

	if (!strcmp(store_kind, "etcd") || tls) {
		char eps[1024] = "", tls_conf[1600] = "";
		if (tls) {
			pki = etcd_pki_create(err_, sizeof err_);
			if (!pki) {
				fprintf(stderr, "cannot make a PKI: %s\n", err_);
				return -1;
			}
			etcd = etcd_cluster_start_tls(1, pki, err_, sizeof err_);
			snprintf(tls_conf, sizeof tls_conf,
			    "      cacert: %s/" ETCD_PKI_CA "\n"
			    "      cert: %s/" ETCD_PKI_CLIENT_CERT "\n"
			    "      key: %s/" ETCD_PKI_CLIENT_KEY "\n",
			    pki, pki, pki);
		} else {
			etcd = etcd_cluster_start(1, err_, sizeof err_);
		}
		if (!etcd) {
			fprintf(stderr, "cannot start etcd: %s\n", err_);
			etcd_pki_remove(pki);
			pki = NULL;
			return -1;
		}
		/* "a,b" -> "\"a\", \"b\"" */
		for (int i = 0; i < etcd_cluster_members(etcd); i++)
			snprintf(eps + strlen(eps), sizeof eps - strlen(eps),
			    "%s\"%s\"", i ? ", " : "",
			    etcd_cluster_member_endpoint(etcd, i));
		snprintf(yaml, sizeof yaml,
		    "plugins:\n"
		    "  - name: store\n"
		    "    use: store-etcd\n"
		    "    config:\n"
		    "      endpoints: [%s]\n"
		    "%s",
		    eps, tls_conf);
	} else {
		snprintf(yaml, sizeof yaml,
		    "plugins:\n"
		    "  - name: store\n"
		    "    use: store-lmdb\n"
		    "    config:\n"
		    "      sync: false\n");
	}
	host = kbt_host_start(yaml, err_, sizeof err_);
	if (!host) {
		fprintf(stderr, "cannot start the host: %s\n", err_);
		etcd_cluster_stop(etcd);
		etcd = NULL;
		etcd_pki_remove(pki);
		pki = NULL;
		return -1;
	}
	const char *fe[] = { "kubus:plugins", "kubus:kind:frontend" };
	const char *pl[] = { "kubus:plugins", "kubus:kind:controller" };
	C = kbt_client(host, "tester", "plugin:tester", fe, 2);
	other = kbt_client(host, "intruder", "plugin:intruder", pl, 2);
	return C && other ? 0 : -1;
}

static int suite_teardown(void **state)
{
	(void)state;
	kbt_host_stop(host);
	etcd_cluster_stop(etcd);
	etcd_pki_remove(pki);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		store_kind = argv[1];
	tls = !strcmp(store_kind, "etcd-tls");
	if (strcmp(store_kind, "lmdb") && strcmp(store_kind, "etcd") && !tls) {
		fprintf(stderr, "usage: %s lmdb|etcd|etcd-tls\n", argv[0]);
		return 2;
	}
	/* The first test runs in etcd-tls only: the others start after it. */
	const struct CMUnitTest all[] = {
		cmocka_unit_test_setup(t_tls_rejected, per_test),
		cmocka_unit_test_setup(t_put_get, per_test),
		cmocka_unit_test_setup(t_conditional_put, per_test),
		cmocka_unit_test_setup(t_delete, per_test),
		cmocka_unit_test_setup(t_get_at_revision, per_test),
		cmocka_unit_test_setup(t_range, per_test),
		cmocka_unit_test_setup(t_txn, per_test),
		cmocka_unit_test_setup(t_invalid, per_test),
		cmocka_unit_test_setup(t_forbidden, per_test),
		cmocka_unit_test_setup(t_watch, per_test),
		cmocka_unit_test_setup(t_watch_many, per_test),
		cmocka_unit_test_setup(t_compact, per_test),
	};
	const struct CMUnitTest *tests = tls ? all : all + 1;
	size_t ntests = sizeof all / sizeof all[0] - (tls ? 0 : 1);
	char name[64];
	snprintf(name, sizeof name, "store-contract-%s", store_kind);
	return _cmocka_run_group_tests(name, tests, ntests, suite_setup,
	    suite_teardown);
}
