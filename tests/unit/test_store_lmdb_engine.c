/* test_store_lmdb_engine.c — the store-lmdb MVCC engine, without the bus. */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/store-lmdb/mvcc.h"
#include "../../plugins/store-lmdb/mvcc_int.h"

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

struct fx {
	char dir[64];
	struct mvcc_config cfg;
	struct mvcc *m;
};

static void fx_open(struct fx *f)
{
	char err[256];
	int rc = mvcc_open(&f->cfg, &f->m, err, sizeof err);
	if (rc)
		fail_msg("open: %s", err);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/kubus-mvcc-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->cfg.path = f->dir;
	f->cfg.map_size = 1 << 20;
	f->cfg.sync = false;
	f->cfg.value_max = 1536 * 1024;
	fx_open(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char err[256] = "";
	if (f->m) {
		int rc = mvcc_check(f->m, err, sizeof err);
		if (rc)
			print_error("check: %s\n", err);
		mvcc_close(f->m);
		assert_int_equal(rc, 0);
	}
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void reopen(struct fx *f)
{
	mvcc_close(f->m);
	fx_open(f);
}

static int put(struct mvcc *m, const char *k, const char *v, int64_t cond,
    int64_t *rev)
{
	return mvcc_put(m, k, strlen(k), v, strlen(v), cond, rev);
}

/* The value of k at rev as a string ("" absent), plus its header. */
static bool getv(struct mvcc *m, const char *k, int64_t rev, char *buf,
    size_t cap, struct mvcc_kv *out, int *rcp)
{
	struct mvcc_reader *r;
	struct mvcc_kv kv;
	bool found = false;
	int rc;

	assert_int_equal(mvcc_read_begin(m, &r), 0);
	rc = mvcc_get(r, k, strlen(k), rev, &kv, &found);
	if (rcp)
		*rcp = rc;
	else
		assert_int_equal(rc, 0);
	buf[0] = 0;
	if (found) {
		snprintf(buf, cap, "%.*s", (int)kv.value_len,
		    (const char *)kv.value);
		if (out) {
			*out = kv;
			out->key = NULL;
			out->value = NULL;
		}
	}
	mvcc_read_end(r);
	return found;
}

static int64_t cur_rev(struct mvcc *m)
{
	struct mvcc_stats st;
	assert_int_equal(mvcc_stats(m, &st), 0);
	return st.rev;
}

static void test_put_get(void **state)
{
	struct fx *f = *state;
	int64_t rev;
	char buf[64];
	struct mvcc_kv kv;

	assert_int_equal(cur_rev(f->m), 0);
	assert_int_equal(put(f->m, "/a", "1", -1, &rev), 0);
	assert_int_equal(rev, 1);
	assert_int_equal(put(f->m, "/b", "2", -1, &rev), 0);
	assert_int_equal(rev, 2);
	assert_int_equal(put(f->m, "/a", "3", -1, &rev), 0);
	assert_int_equal(rev, 3);
	assert_true(getv(f->m, "/a", 0, buf, sizeof buf, &kv, NULL));
	assert_string_equal(buf, "3");
	assert_int_equal(kv.create_rev, 1);
	assert_int_equal(kv.mod_rev, 3);
	assert_int_equal(kv.version, 2);
	assert_false(getv(f->m, "/c", 0, buf, sizeof buf, NULL, NULL));
	/* empty values are values */
	assert_int_equal(put(f->m, "/e", "", -1, &rev), 0);
	assert_true(getv(f->m, "/e", 0, buf, sizeof buf, NULL, NULL));
	reopen(f);
	assert_int_equal(cur_rev(f->m), 4);
	assert_true(getv(f->m, "/a", 0, buf, sizeof buf, &kv, NULL));
	assert_string_equal(buf, "3");
}

static void test_conditions(void **state)
{
	struct fx *f = *state;
	int64_t rev;
	int del;
	char buf[64];

	assert_int_equal(put(f->m, "/k", "1", 0, &rev), 0); /* absent: ok */
	assert_int_equal(rev, 1);
	assert_int_equal(put(f->m, "/k", "2", 0, &rev), KB_ECONFLICT);
	assert_int_equal(rev, 1);
	assert_int_equal(put(f->m, "/k", "2", 7, &rev), KB_ECONFLICT);
	assert_int_equal(put(f->m, "/k", "2", 1, &rev), 0);
	assert_int_equal(rev, 2);
	assert_int_equal(mvcc_del(f->m, "/k", 2, 1, &rev, &del), KB_ECONFLICT);
	assert_true(getv(f->m, "/k", 0, buf, sizeof buf, NULL, NULL));
	assert_int_equal(mvcc_del(f->m, "/k", 2, 2, &rev, &del), 0);
	assert_int_equal(del, 1);
	assert_int_equal(rev, 3);
	/* a missing key: nothing deleted, no new revision */
	assert_int_equal(mvcc_del(f->m, "/k", 2, -1, &rev, &del), 0);
	assert_int_equal(del, 0);
	assert_int_equal(rev, 3);
	/* with a condition a missing key is a conflict */
	assert_int_equal(mvcc_del(f->m, "/k", 2, 3, &rev, &del), KB_ECONFLICT);
	assert_int_equal(cur_rev(f->m), 3);
	/* recreated: version starts again, create_rev is new */
	struct mvcc_kv kv;
	assert_int_equal(put(f->m, "/k", "x", 0, &rev), 0);
	assert_true(getv(f->m, "/k", 0, buf, sizeof buf, &kv, NULL));
	assert_int_equal(kv.create_rev, 4);
	assert_int_equal(kv.version, 1);
}

static void test_invalid(void **state)
{
	struct fx *f = *state;
	char big[600];
	int64_t rev;

	memset(big, 'k', sizeof big);
	big[sizeof big - 1] = 0;
	assert_int_equal(put(f->m, "", "v", -1, &rev), KB_EINVAL);
	assert_int_equal(put(f->m, big, "v", -1, &rev), KB_EINVAL);
	char *huge = malloc(1536 * 1024 + 2);
	memset(huge, 'v', 1536 * 1024 + 1);
	huge[1536 * 1024 + 1] = 0;
	assert_int_equal(put(f->m, "/h", huge, -1, &rev), KB_EINVAL);
	huge[1536 * 1024] = 0; /* exactly the limit is fine */
	assert_int_equal(put(f->m, "/h", huge, -1, &rev), 0);
	free(huge);
	/* a txn with one bad op changes nothing */
	struct mvcc_op ops[2] = {
		{ MVCC_PUT, "/ok", 3, "v", 1 },
		{ MVCC_PUT, "", 0, "v", 1 },
	};
	struct mvcc_write w = { .kind = MVCC_W_TXN,
		.success = ops,
		.nsuccess = 2 };
	assert_int_equal(mvcc_write_sync(f->m, &w), KB_EINVAL);
	mvcc_write_release(&w);
	assert_int_equal(cur_rev(f->m), 1);
	struct mvcc_cmp c = { "/ok", 3, 99, MVCC_EQ, 0 };
	struct mvcc_write w2 = { .kind = MVCC_W_TXN, .cmp = &c, .ncmp = 1 };
	assert_int_equal(mvcc_write_sync(f->m, &w2), KB_EINVAL);
	int64_t cr;
	assert_int_equal(mvcc_compact(f->m, 5, &cr), KB_EINVAL);
}

static void test_txn(void **state)
{
	struct fx *f = *state;
	int64_t rev;
	char buf[64];

	assert_int_equal(put(f->m, "/t/a", "1", -1, &rev), 0);
	struct mvcc_cmp cmp[2] = {
		{ "/t/a", 4, MVCC_MOD, MVCC_EQ, 1 },
		{ "/t/b", 4, MVCC_EXISTS, MVCC_EQ, 0 },
	};
	struct mvcc_op succ[4] = {
		{ MVCC_PUT, "/t/a", 4, "2", 1 },
		{ MVCC_PUT, "/t/b", 4, "b", 1 },
		{ MVCC_GET, "/t/a", 4, NULL, 0 },
		{ MVCC_DELETE, "/t/zz", 5, NULL, 0 },
	};
	struct mvcc_op fail[1] = { { MVCC_GET, "/t/a", 4, NULL, 0 } };
	struct mvcc_write w = { .kind = MVCC_W_TXN,
		.cmp = cmp,
		.ncmp = 2,
		.success = succ,
		.nsuccess = 4,
		.failure = fail,
		.nfailure = 1,
		.want_prev = true };
	assert_int_equal(mvcc_write_sync(f->m, &w), 0);
	assert_true(w.succeeded);
	assert_int_equal(w.rev, 2); /* one revision for the txn */
	assert_int_equal(w.nres, 4);
	assert_int_equal(w.res[0].rev, 2);
	assert_true(w.res[0].has_prev);
	assert_int_equal(w.res[0].prev.mod_rev, 1);
	assert_int_equal(w.res[1].rev, 2);
	assert_false(w.res[1].has_prev);
	assert_true(w.res[2].has_kv);
	assert_int_equal(w.res[2].kv.mod_rev, 2); /* sees the txn's put */
	assert_memory_equal(w.res[2].kv.value, "2", 1);
	assert_int_equal(w.res[3].deleted, 0);
	mvcc_write_release(&w);
	/* same compares now fail: failure branch, no new revision */
	assert_int_equal(mvcc_write_sync(f->m, &w), 0);
	assert_false(w.succeeded);
	assert_int_equal(w.rev, 2);
	assert_int_equal(w.nres, 1);
	assert_true(w.res[0].has_kv);
	assert_int_equal(w.res[0].kv.version, 2);
	mvcc_write_release(&w);
	assert_true(getv(f->m, "/t/b", 0, buf, sizeof buf, NULL, NULL));
	/* compare operators */
	struct mvcc_cmp c2[3] = {
		{ "/t/a", 4, MVCC_VERSION, MVCC_GT, 1 },
		{ "/t/a", 4, MVCC_CREATE, MVCC_LT, 2 },
		{ "/t/a", 4, MVCC_MOD, MVCC_NE, 1 },
	};
	struct mvcc_write w3 = { .kind = MVCC_W_TXN, .cmp = c2, .ncmp = 3 };
	assert_int_equal(mvcc_write_sync(f->m, &w3), 0);
	assert_true(w3.succeeded);
	mvcc_write_release(&w3);
	/* two writes of one key in a txn: two changes, one revision */
	struct mvcc_op two[2] = {
		{ MVCC_PUT, "/t/a", 4, "x", 1 },
		{ MVCC_DELETE, "/t/a", 4, NULL, 0 },
	};
	struct mvcc_write w4 = { .kind = MVCC_W_TXN,
		.success = two,
		.nsuccess = 2 };
	assert_int_equal(mvcc_write_sync(f->m, &w4), 0);
	assert_int_equal(w4.rev, 3);
	assert_int_equal(w4.res[1].deleted, 1);
	mvcc_write_release(&w4);
	assert_false(getv(f->m, "/t/a", 0, buf, sizeof buf, NULL, NULL));
	assert_true(getv(f->m, "/t/a", 2, buf, sizeof buf, NULL, NULL));
	assert_string_equal(buf, "2");
}

struct collect {
	char keys[64][32];
	int64_t mods[64];
	int n;
};

static int collect_kv(void *arg, const struct mvcc_kv *kv)
{
	struct collect *c = arg;
	snprintf(c->keys[c->n], 32, "%.*s", (int)kv->key_len, kv->key);
	c->mods[c->n] = kv->mod_rev;
	c->n++;
	return 0;
}

static void range(struct mvcc *m, const char *prefix, const char *after,
    int64_t limit, int64_t rev, struct collect *c, int64_t *count, bool *more,
    int want_rc)
{
	struct mvcc_reader *r;
	struct mvcc_range q = { prefix, strlen(prefix), after,
		after ? strlen(after) : 0, limit, false, false, rev };
	memset(c, 0, sizeof *c);
	assert_int_equal(mvcc_read_begin(m, &r), 0);
	assert_int_equal(mvcc_range(r, &q, collect_kv, c, count, more),
	    want_rc);
	mvcc_read_end(r);
}

static void test_range(void **state)
{
	struct fx *f = *state;
	struct collect c;
	int64_t count, rev;
	bool more;

	put(f->m, "/r/a", "1", -1, NULL);          /* 1 */
	put(f->m, "/r/b", "1", -1, NULL);          /* 2 */
	put(f->m, "/r/c", "1", -1, NULL);          /* 3 */
	put(f->m, "/rx", "1", -1, NULL);           /* 4 */
	put(f->m, "/q", "1", -1, NULL);            /* 5 */
	mvcc_del(f->m, "/r/b", 4, -1, NULL, NULL); /* 6 */
	put(f->m, "/r/d", "1", -1, &rev);          /* 7 */

	range(f->m, "/r/", NULL, 0, 0, &c, &count, &more, 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(count, 3);
	assert_false(more);
	assert_string_equal(c.keys[0], "/r/a");
	assert_string_equal(c.keys[2], "/r/d");
	range(f->m, "/r/", NULL, 2, 0, &c, &count, &more, 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(count, 3);
	assert_true(more);
	range(f->m, "/r/", "/r/c", 2, 0, &c, &count, &more, 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.keys[0], "/r/d");
	assert_false(more);
	range(f->m, "", NULL, 0, 0, &c, &count, &more, 0);
	assert_int_equal(count, 5);
	/* at a past revision, deleted keys come back and later ones vanish */
	range(f->m, "/r/", NULL, 0, 5, &c, &count, &more, 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.keys[1], "/r/b");
	assert_string_equal(c.keys[2], "/r/c");
	range(f->m, "/r/", NULL, 1, 5, &c, &count, &more, 0);
	assert_int_equal(c.n, 1);
	assert_true(more);
	range(f->m, "/r/", "/r/a", 5, 5, &c, &count, &more, 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(count, 3);
	range(f->m, "/r/", NULL, 0, 99, &c, &count, &more, KB_EINVAL);

	/* keys_only and count_only */
	struct mvcc_reader *r;
	struct mvcc_range q = { "/r/", 3, NULL, 0, 0, true, false, 0 };
	memset(&c, 0, sizeof c);
	assert_int_equal(mvcc_read_begin(f->m, &r), 0);
	assert_int_equal(mvcc_range(r, &q, collect_kv, &c, &count, &more), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(count, 3);
	mvcc_read_end(r);

	/* compaction: older reads expire, the compact revision still reads */
	int64_t cr;
	assert_int_equal(mvcc_compact(f->m, 5, &cr), 0);
	assert_int_equal(cr, 5);
	range(f->m, "/r/", NULL, 0, 4, &c, &count, &more, KB_EEXPIRED);
	range(f->m, "/r/", NULL, 0, 5, &c, &count, &more, 0);
	assert_int_equal(c.n, 3);
	range(f->m, "/r/", NULL, 0, 6, &c, &count, &more, 0);
	assert_int_equal(c.n, 2);
	char buf[8];
	int rc;
	getv(f->m, "/r/a", 4, buf, sizeof buf, NULL, &rc);
	assert_int_equal(rc, KB_EEXPIRED);
	assert_true(getv(f->m, "/r/a", 5, buf, sizeof buf, NULL, NULL));
	/* compacting to an older revision changes nothing */
	assert_int_equal(mvcc_compact(f->m, 3, &cr), 0);
	assert_int_equal(cr, 5);
}

struct evlog {
	pthread_mutex_t mu;
	int64_t last_rev;
	int n, bad;
	char last[64];
	bool last_prev;
};

static int ev_cb(void *arg, const struct mvcc_event *ev)
{
	struct evlog *l = arg;
	if (ev->kv.mod_rev < l->last_rev)
		l->bad++;
	l->last_rev = ev->kv.mod_rev;
	snprintf(l->last, sizeof l->last, "%s %.*s=%.*s",
	    ev->type == MVCC_PUT ? "put" : "del", (int)ev->kv.key_len,
	    ev->kv.key, (int)ev->kv.value_len,
	    ev->kv.value ? (const char *)ev->kv.value : "");
	l->last_prev = ev->has_prev;
	l->n++;
	return 0;
}

static void listen_cb(void *arg, const struct mvcc_event *ev, size_t n,
    int64_t rev)
{
	struct evlog *l = arg;
	for (size_t i = 0; i < n; i++)
		ev_cb(l, &ev[i]);
	if (l->last_rev != rev)
		l->bad++;
}

static void test_history(void **state)
{
	struct fx *f = *state;
	struct mvcc_reader *r;
	struct evlog l = { .n = 0 };
	int64_t cr;

	put(f->m, "/h/a", "1", -1, NULL);          /* 1 */
	put(f->m, "/h/a", "2", -1, NULL);          /* 2 */
	put(f->m, "/x", "2", -1, NULL);            /* 3 */
	mvcc_del(f->m, "/h/a", 4, -1, NULL, NULL); /* 4 */
	put(f->m, "/h/a", "3", -1, NULL);          /* 5 */

	assert_int_equal(mvcc_read_begin(f->m, &r), 0);
	assert_int_equal(mvcc_history(r, "/h/", 3, 1, 5, true, ev_cb, &l), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.bad, 0);
	assert_string_equal(l.last, "put /h/a=3");
	assert_false(l.last_prev); /* recreated after a delete */
	memset(&l, 0, sizeof l);
	assert_int_equal(mvcc_history(r, "/h/", 3, 4, 4, true, ev_cb, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.last, "del /h/a=");
	assert_true(l.last_prev);
	mvcc_read_end(r);

	assert_int_equal(mvcc_compact(f->m, 3, &cr), 0);
	assert_int_equal(mvcc_read_begin(f->m, &r), 0);
	memset(&l, 0, sizeof l);
	assert_int_equal(mvcc_history(r, "", 0, 3, 5, true, ev_cb, &l),
	    KB_EEXPIRED);
	assert_int_equal(mvcc_history(r, "", 0, 4, 5, true, ev_cb, &l), 0);
	assert_int_equal(l.n, 2);
	mvcc_read_end(r);

	/* the listener sees every later change in order */
	memset(&l, 0, sizeof l);
	l.last_rev = 5;
	mvcc_set_listener(f->m, listen_cb, &l);
	put(f->m, "/h/b", "1", -1, NULL);
	mvcc_del(f->m, "/h/b", 4, -1, NULL, NULL);
	mvcc_set_listener(f->m, NULL, NULL);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.bad, 0);
	assert_string_equal(l.last, "del /h/b=");
	assert_true(l.last_prev);
}

/* --- concurrency: group commit ------------------------------------------- */

struct wargs {
	struct mvcc *m;
	int id, n;
	int errors;
};

static void *writer(void *arg)
{
	struct wargs *a = arg;
	char key[32], val[1024];
	memset(val, 'v', sizeof val);
	for (int i = 0; i < a->n; i++) {
		snprintf(key, sizeof key, "/w/%d/%d", a->id, i % 8);
		if (mvcc_put(a->m, key, strlen(key), val, sizeof val, -1, NULL))
			a->errors++;
	}
	return NULL;
}

static void test_group_commit(void **state)
{
	struct fx *f = *state;
	enum {
		T = 32,
		N = 60
	};
	pthread_t th[T];
	struct wargs a[T];
	struct mvcc_stats st;
	struct evlog l = { .n = 0 };

	/* durable, so commits cost an fsync and writers pile up */
	mvcc_close(f->m);
	f->cfg.sync = true;
	fx_open(f);
	mvcc_set_listener(f->m, listen_cb, &l);
	for (int i = 0; i < T; i++) {
		a[i] = (struct wargs){ f->m, i, N, 0 };
		pthread_create(&th[i], NULL, writer, &a[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].errors, 0);
	}
	mvcc_set_listener(f->m, NULL, NULL);
	assert_int_equal(mvcc_stats(f->m, &st), 0);
	assert_int_equal(st.rev, T * N);
	assert_int_equal(st.writes, T * N);
	assert_int_equal(l.n, T * N);
	assert_int_equal(l.bad, 0);
	print_message("%lld writes in %lld commits\n", (long long)st.writes,
	    (long long)st.commits);
	assert_true(st.commits < st.writes / 4);
}

/* One key rewritten with values of every kind of size (in the leaf, on
 * overflow pages, growing, shrinking, empty), alone and several times in
 * one transaction: every revision reads back what was written. */
static void test_value_sizes(void **state)
{
	struct fx *f = *state;
	static const size_t sizes[] = { 1, 3000, 10000, 10000, 50, 0, 20000,
		5, 4000, 9000, 2 };
	enum { NS = sizeof sizes / sizeof sizes[0] };
	char *vals[NS + 5];
	const char *expv[NS + 1];
	int64_t revs[NS + 1];
	size_t vlen[NS + 1];
	struct mvcc_reader *r;
	struct mvcc_kv kv;
	bool found;

	for (int i = 0; i < NS + 5; i++) {
		vals[i] = malloc(30000);
		memset(vals[i], 'a' + i, 30000);
	}
	for (int i = 0; i < NS; i++) {
		assert_int_equal(mvcc_put(f->m, "/s/k", 4, vals[i], sizes[i],
				     i % 2 ? revs[i - 1] : -1, &revs[i]),
		    0);
		vlen[i] = sizes[i];
		expv[i] = vals[i];
		/* a neighbour, so the key's page holds others too */
		assert_int_equal(put(f->m, i % 2 ? "/s/j" : "/s/l", "n", -1,
				     NULL),
		    0);
	}
	/* one transaction: small, large, small, delete, larger, small */
	struct mvcc_op ops[6] = {
		{ MVCC_PUT, "/s/k", 4, vals[NS], 12000 },
		{ MVCC_PUT, "/s/k", 4, vals[NS + 1], 3 },
		{ MVCC_PUT, "/s/m", 4, vals[NS + 2], 25000 },
		{ MVCC_DELETE, "/s/k", 4, NULL, 0 },
		{ MVCC_PUT, "/s/k", 4, vals[NS + 3], 30000 },
		{ MVCC_PUT, "/s/k", 4, vals[NS + 4], 7 },
	};
	struct mvcc_write w = { .kind = MVCC_W_TXN,
		.success = ops,
		.nsuccess = 6,
		.want_prev = true };
	assert_int_equal(mvcc_write_sync(f->m, &w), 0);
	assert_true(w.res[1].has_prev);
	assert_int_equal(w.res[1].prev.value_len, 12000);
	assert_memory_equal(w.res[1].prev.value, vals[NS], 12000);
	assert_int_equal(w.res[5].prev.value_len, 30000);
	assert_memory_equal(w.res[5].prev.value, vals[NS + 3], 30000);
	revs[NS] = w.rev;
	vlen[NS] = 7;
	expv[NS] = vals[NS + 4];
	mvcc_write_release(&w);
	assert_int_equal(mvcc_read_begin(f->m, &r), 0);
	for (int i = 0; i <= NS; i++) {
		assert_int_equal(
		    mvcc_get(r, "/s/k", 4, revs[i], &kv, &found), 0);
		assert_true(found);
		assert_int_equal(kv.mod_rev, revs[i]);
		assert_int_equal(kv.value_len, vlen[i]);
		if (vlen[i])
			assert_memory_equal(kv.value, expv[i], vlen[i]);
	}
	assert_int_equal(mvcc_get(r, "/s/m", 4, 0, &kv, &found), 0);
	assert_true(found && kv.value_len == 25000);
	mvcc_read_end(r);
	for (int i = 0; i < NS + 5; i++)
		free(vals[i]);
}

/* --- readers: a snapshot's revisions from the last commit or from meta --- */

struct rdargs {
	struct mvcc *m;
	volatile int stop;
	long reads, bad;
	int64_t last;
};

static void *reader(void *arg)
{
	struct rdargs *a = arg;
	while (!a->stop) {
		struct mvcc_reader *r;
		int64_t rev, compact;
		if (mvcc_read_begin(a->m, &r)) {
			a->bad++;
			continue;
		}
		/* what meta says in the same snapshot */
		if (meta_load(a->m, r->txn, &rev, &compact, NULL, NULL) ||
		    rev != mvcc_reader_rev(r) ||
		    compact != mvcc_reader_compact_rev(r) || rev < a->last)
			a->bad++;
		a->last = rev;
		a->reads++;
		mvcc_read_end(r);
	}
	return NULL;
}

static void test_reader_revs(void **state)
{
	struct fx *f = *state;
	enum {
		T = 8,
		N = 200
	};
	pthread_t th[T], rt[2];
	struct wargs a[T];
	struct rdargs ra[2];

	for (int i = 0; i < 2; i++) {
		ra[i] = (struct rdargs){ .m = f->m };
		pthread_create(&rt[i], NULL, reader, &ra[i]);
	}
	for (int i = 0; i < T; i++) {
		a[i] = (struct wargs){ f->m, i, N, 0 };
		pthread_create(&th[i], NULL, writer, &a[i]);
	}
	for (int c = 1; c <= 20; c++) {
		int64_t rev = cur_rev(f->m);
		if (rev > 1)
			assert_int_equal(mvcc_compact(f->m, rev / 2, NULL), 0);
		usleep(2000);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].errors, 0);
	}
	for (int i = 0; i < 2; i++) {
		ra[i].stop = 1;
		pthread_join(rt[i], NULL);
		print_message("reader %d: %ld snapshots, %ld wrong\n", i,
		    ra[i].reads, ra[i].bad);
		assert_int_equal(ra[i].bad, 0);
		assert_true(ra[i].reads > 0);
	}
	/* after a reopen, before any commit, and after one */
	reopen(f);
	assert_int_equal(cur_rev(f->m), T * N);
	assert_int_equal(put(f->m, "/after", "x", -1, NULL), 0);
	assert_int_equal(cur_rev(f->m), T * N + 1);
}

/* --- space: churn must not grow the file; the map grows on demand --------- */

/* Wait (up to 5 s) until compaction is within the history window plus
 * one compaction's slack of the head, then read the stats. */
static void wait_compacted(struct fx *f, struct mvcc_stats *st)
{
	for (int i = 0; i < 500; i++) {
		assert_int_equal(mvcc_stats(f->m, st), 0);
		if (st->compact_rev >= st->rev - 600)
			break;
		usleep(10 * 1000);
	}
	usleep(20 * 1000);
	assert_int_equal(mvcc_stats(f->m, st), 0);
}

static void test_churn(void **state)
{
	struct fx *f = *state;
	struct mvcc_stats st;
	char key[32], val[512];
	int64_t size_mid = 0;

	mvcc_close(f->m);
	f->cfg.history_revisions = 500;
	f->cfg.compact_interval_ms = 10;
	fx_open(f);
	memset(val, 'c', sizeof val);
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 4000; i++) {
			snprintf(key, sizeof key, "/leases/%d", i % 200);
			assert_int_equal(mvcc_put(f->m, key, strlen(key), val,
					     sizeof val, -1, NULL),
			    0);
			/* Leases churn at a pace; a writer that never pauses
			 * on a starved machine only measures the scheduler. */
			if (i % 500 == 499)
				wait_compacted(f, &st);
		}
		/* Measure once the background compactor has caught up: on a
		 * busy machine it may lag the writer, and a lag is not growth. */
		wait_compacted(f, &st);
		if (round == 2)
			size_mid = st.file_bytes;
	}
	wait_compacted(f, &st);
	print_message("after %lld writes: file %lld bytes (mid %lld), "
		      "%lld history records, compact %lld\n",
	    (long long)st.rev, (long long)st.file_bytes, (long long)size_mid,
	    (long long)st.history_records, (long long)st.compact_rev);
	assert_true(st.compact_rev >= st.rev - 1000);
	assert_true(st.history_records <= 200 + 1100);
	assert_true(st.file_bytes <= size_mid + size_mid / 4);
}

static void test_bytes_window(void **state)
{
	struct fx *f = *state;
	struct mvcc_stats st;
	char key[32], val[1000];

	mvcc_close(f->m);
	f->cfg.history_bytes = 256 * 1024;
	f->cfg.compact_interval_ms = 5;
	fx_open(f);
	memset(val, 'b', sizeof val);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof key, "/b/%d", i % 50);
		assert_int_equal(mvcc_put(f->m, key, strlen(key), val,
				     sizeof val, -1, NULL),
		    0);
	}
	usleep(100 * 1000);
	assert_int_equal(mvcc_stats(f->m, &st), 0);
	assert_true(st.compact_rev > 0);
	assert_true(st.window_bytes <= 256 * 1024 + 64 * 1024);
}

static void test_map_growth(void **state)
{
	struct fx *f = *state;
	struct mvcc_stats st;
	char key[32];
	char *val = malloc(100 * 1024);

	memset(val, 'g', 100 * 1024);
	/* 1 MiB map, 30 MiB of live data and as much history */
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof key, "/g/%d", i);
		assert_int_equal(mvcc_put(f->m, key, strlen(key), val,
				     100 * 1024, -1, NULL),
		    0);
	}
	free(val);
	assert_int_equal(mvcc_stats(f->m, &st), 0);
	assert_true(st.map_size >= 60 << 20);
	assert_int_equal(st.keys, 300);
	reopen(f);
	assert_int_equal(cur_rev(f->m), 300);
}

static int64_t data_file_size(const struct fx *f)
{
	char path[128];
	struct stat sb;
	snprintf(path, sizeof path, "%s/data.mdb", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	return (int64_t)sb.st_size;
}

/* With sync on, the data file is kept written ahead of LMDB's last page
 * (commit.c, filler), so that commits overwrite blocks rather than
 * grow the file; LMDB reads such a file back as it wrote it. Without sync
 * nothing is written ahead. */
static void test_fill_ahead(void **state)
{
	struct fx *f = *state;
	struct mvcc_stats st;
	char key[32], buf[64], want[64];

	assert_int_equal(put(f->m, "/a/first", "1", -1, NULL), 0);
	assert_int_equal(mvcc_stats(f->m, &st), 0);
	assert_true(data_file_size(f) < st.file_bytes + (1 << 20));
	mvcc_close(f->m);
	f->cfg.sync = true;
	f->cfg.map_size = 64 << 20;
	fx_open(f);
	/* 6 MiB in 1,536 writes, a batch each: the file grows past two fills */
	char *val = malloc(4096);
	memset(val, 'z', 4096);
	for (int i = 0; i < 1536; i++) {
		snprintf(key, sizeof key, "/a/%04d", i);
		memcpy(val, key, strlen(key));
		assert_int_equal(mvcc_put(f->m, key, strlen(key), val, 4096, -1,
				     NULL),
		    0);
		if (i % 256 == 0) {
			/* the filler thread follows within moments */
			int64_t size = 0;
			for (int t = 0; t < 500; t++) {
				assert_int_equal(mvcc_stats(f->m, &st), 0);
				if ((size = data_file_size(f)) >= st.file_bytes + (2 << 20))
					break;
				usleep(10000);
			}
			if (size < st.file_bytes + (2 << 20))
				fail_msg("write %d: file %lld bytes, last page ends at %lld", i,
				    (long long)size, (long long)st.file_bytes);
		}
	}
	free(val);
	assert_int_equal(mvcc_stats(f->m, &st), 0);
	assert_true(st.file_bytes > 6 << 20);
	reopen(f);
	assert_true(getv(f->m, "/a/first", 0, buf, sizeof buf, NULL, NULL));
	assert_string_equal(buf, "1");
	for (int i = 0; i < 1536; i++) {
		struct mvcc_kv kv;
		snprintf(key, sizeof key, "/a/%04d", i);
		assert_true(getv(f->m, key, 0, buf, sizeof buf, &kv, NULL));
		assert_int_equal(kv.value_len, 4096);
		memset(want, 'z', sizeof want - 1); /* getv keeps 63 bytes */
		memcpy(want, key, strlen(key));
		want[sizeof want - 1] = 0;
		assert_string_equal(buf, want);
	}
}

static int count_kv(void *arg, const struct mvcc_kv *kv)
{
	*(int64_t *)arg += kv->value_len == 3000;
	return 0;
}

static void io_counts(int64_t *wchar, int64_t *write_bytes)
{
	FILE *fp = fopen("/proc/self/io", "r");
	char line[128];
	long long v;
	*wchar = *write_bytes = -1;
	assert_non_null(fp);
	while (fgets(line, sizeof line, fp)) {
		if (sscanf(line, "wchar: %lld", &v) == 1)
			*wchar = v;
		else if (sscanf(line, "write_bytes: %lld", &v) == 1)
			*write_bytes = v;
	}
	fclose(fp);
}

/* A page LMDB writes costs about a page of I/O, on a file read back cold
 * as well: since Linux 6.16 ext4 caches a file in folios as large as a
 * write or a readahead made them, and writeback writes a dirty folio
 * whole, so a 4 KiB page in a folio the filler's 256 KiB of zeros or an
 * mmap readahead made cost up to half a MiB of I/O at every commit (the
 * store opens LMDB with MDB_NORDAHEAD, the filler writes a page at a
 * time). On kernels without large folios this holds trivially. */
static void test_write_amplification(void **state)
{
	struct fx *f = *state;
	char key[32], path[128];
	static char val[3000];
	int64_t wc0, wb0, wc1, wb1;
	mvcc_close(f->m);
	f->cfg.sync = true;
	f->cfg.map_size = 64 << 20;
	fx_open(f);
	memset(val, 'v', sizeof val);
	/* a growing store: 3,000 new keys of 3,000 bytes, a commit each,
	 * into the pages the filler wrote ahead */
	for (int i = 0; i < 3000; i++) {
		if (i == 500)
			io_counts(&wc0, &wb0);
		snprintf(key, sizeof key, "/w/%05d", i);
		assert_int_equal(mvcc_put(f->m, key, strlen(key), val, sizeof val, -1, NULL), 0);
	}
	io_counts(&wc1, &wb1);
	if (wb1 - wb0 <= 0) {
		print_message("write_bytes not counted on this filesystem: amplification not measured\n");
		skip();
	}
	print_message("growing, 2,500 commits: %lld bytes written by calls, %lld bytes of I/O\n",
	    (long long)(wc1 - wc0), (long long)(wb1 - wb0));
	if (wb1 - wb0 > 2 * (wc1 - wc0))
		fail_msg("growing: I/O %lld bytes for %lld written: large folios written whole",
		    (long long)(wb1 - wb0), (long long)(wc1 - wc0));
	/* read back cold: the pages come in through the map */
	mvcc_close(f->m);
	snprintf(path, sizeof path, "%s/data.mdb", f->dir);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fdatasync(fd), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
	fx_open(f);
	struct mvcc_reader *r;
	struct mvcc_range q = { "/w/", 3, NULL, 0, 0, false, false, 0 };
	int64_t count = 0, seen = 0;
	bool more = false;
	assert_int_equal(mvcc_read_begin(f->m, &r), 0);
	assert_int_equal(mvcc_range(r, &q, count_kv, &seen, &count, &more), 0);
	mvcc_read_end(r);
	assert_int_equal(seen, 3000);
	/* 1,000 rewrites, a commit each, scattered over the pages */
	io_counts(&wc0, &wb0);
	srand(7);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "/w/%05d", rand() % 3000);
		val[0] = (char)('a' + i % 26);
		assert_int_equal(mvcc_put(f->m, key, strlen(key), val, sizeof val, -1, NULL), 0);
	}
	io_counts(&wc1, &wb1);
	print_message("read back cold, 1,000 commits: %lld bytes written by calls, %lld bytes of I/O\n",
	    (long long)(wc1 - wc0), (long long)(wb1 - wb0));
	if (wb1 - wb0 > 2 * (wc1 - wc0))
		fail_msg("cold: I/O %lld bytes for %lld written: large folios written whole",
		    (long long)(wb1 - wb0), (long long)(wc1 - wc0));
}

/* A full disk (here: a file size limit) fails writes with a clear error,
 * keeps what was acknowledged, and writing works again once there is room. */
static void test_disk_full(void **state)
{
	struct fx *f = *state;
	struct mvcc_stats st;
	struct rlimit old, lim;
	char key[32], *val = malloc(64 * 1024), buf[16];
	int rc = 0, i, acked = 0;
	int64_t rev;

	mvcc_close(f->m);
	f->cfg.sync = true;
	fx_open(f);
	memset(val, 'f', 64 * 1024);
	assert_int_equal(put(f->m, "/full/0", "x", -1, NULL), 0);
	assert_int_equal(mvcc_stats(f->m, &st), 0);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)st.file_bytes + 512 * 1024;
	setrlimit(RLIMIT_FSIZE, &lim);
	for (i = 1; i < 200; i++) {
		snprintf(key, sizeof key, "/full/%d", i);
		rc = mvcc_put(f->m, key, strlen(key), val, 64 * 1024, -1, &rev);
		if (rc)
			break;
		acked = i;
	}
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, KB_EUNAVAILABLE);
	assert_true(acked > 0);
	char err[256];
	if (mvcc_check(f->m, err, sizeof err))
		fail_msg("after a full disk: %s", err);
	/* room again: writes go on, and everything acknowledged is there */
	assert_int_equal(put(f->m, "/full/after", "y", -1, NULL), 0);
	reopen(f);
	for (i = 1; i <= acked; i++) {
		snprintf(key, sizeof key, "/full/%d", i);
		assert_true(getv(f->m, key, 0, buf, sizeof buf, NULL, NULL));
	}
	assert_true(getv(f->m, "/full/after", 0, buf, sizeof buf, NULL, NULL));
	free(val);
}

/* Random operations against a model, with compactions on the way; reads at
 * past revisions are checked against the model's snapshot of that time. */
enum {
	MK = 40,
	MOPS = 3000
};
struct snap {
	bool present[MK];
	char val[MK][8];
};

static void check_at(struct mvcc *m, const struct snap *snaps, int64_t rev,
    int64_t cur)
{
	struct mvcc_reader *r;
	char key[32];
	int live = 0;

	assert_int_equal(mvcc_read_begin(m, &r), 0);
	if (rev <= 0 || rev < mvcc_reader_compact_rev(r) || rev > cur) {
		mvcc_read_end(r);
		return;
	}
	for (int k = 0; k < MK; k++) {
		struct mvcc_kv kv;
		bool found;
		snprintf(key, sizeof key, "/m/%02d", k);
		assert_int_equal(mvcc_get(r, key, strlen(key), rev, &kv,
				     &found),
		    0);
		if (found != snaps[rev].present[k])
			fail_msg("%s at %lld: found %d, model %d", key,
			    (long long)rev, found, snaps[rev].present[k]);
		if (found) {
			assert_int_equal(kv.value_len,
			    strlen(snaps[rev].val[k]));
			assert_memory_equal(kv.value, snaps[rev].val[k],
			    kv.value_len);
			assert_true(kv.mod_rev <= rev);
		}
		live += snaps[rev].present[k];
	}
	struct collect c;
	struct mvcc_range q = { "/m/", 3, NULL, 0, 0, false, false, rev };
	int64_t count;
	bool more;
	memset(&c, 0, sizeof c);
	assert_int_equal(mvcc_range(r, &q, collect_kv, &c, &count, &more), 0);
	assert_int_equal(count, live);
	mvcc_read_end(r);
}

static void test_model(void **state)
{
	struct fx *f = *state;
	struct snap *snaps = calloc(MOPS + 2, sizeof *snaps), cur = { 0 };
	char key[32], buf[32];
	int64_t rev = 0, mod[MK] = { 0 };
	unsigned seed = 42;

	mvcc_close(f->m);
	f->cfg.history_revisions = 300;
	f->cfg.compact_interval_ms = 1;
	fx_open(f);
	for (int i = 0; i < MOPS; i++) {
		int k = (int)(rand_r(&seed) % MK), what = rand_r(&seed) % 10;
		int64_t r;
		int del;
		snprintf(key, sizeof key, "/m/%02d", k);
		if (what < 6) {
			char val[8];
			snprintf(val, sizeof val, "%d", i);
			int64_t cond = what == 0 ? mod[k] : -1;
			assert_int_equal(mvcc_put(f->m, key, strlen(key), val,
					     strlen(val), cond, &r),
			    0);
			assert_int_equal(r, ++rev);
			strcpy(cur.val[k], val);
			cur.present[k] = true;
			mod[k] = r;
			snaps[rev] = cur;
		} else if (what < 8) {
			assert_int_equal(mvcc_del(f->m, key, strlen(key), -1,
					     &r, &del),
			    0);
			assert_int_equal(del, cur.present[k]);
			if (cur.present[k]) {
				rev++;
				cur.present[k] = false;
				snaps[rev] = cur;
			}
			assert_int_equal(r, rev);
			mod[k] = 0;
		} else {
			bool found =
			    getv(f->m, key, 0, buf, sizeof buf, NULL, NULL);
			assert_int_equal(found, cur.present[k]);
			if (found)
				assert_string_equal(buf, cur.val[k]);
			/* and somewhere in the readable past */
			check_at(f->m, snaps,
			    rev - (int64_t)(rand_r(&seed) % 250), rev);
		}
	}
	for (int64_t r = rev; r > rev - 300 && r > 0; r--)
		check_at(f->m, snaps, r, rev);
	char err[256];
	if (mvcc_check(f->m, err, sizeof err))
		fail_msg("check: %s", err);
	struct mvcc_stats st;
	assert_int_equal(mvcc_stats(f->m, &st), 0);
	/* tombstones went with compaction: kv holds about the live keys */
	int live = 0;
	for (int k = 0; k < MK; k++)
		live += cur.present[k];
	assert_true(st.keys <= MK);
	assert_true(st.keys >= live);
	free(snaps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conditions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_sizes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reader_revs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bytes_window, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_map_growth, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fill_ahead, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_amplification, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_model, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
