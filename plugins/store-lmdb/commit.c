/* commit.c — the write path: validation, the queue, and the committer
 * thread that applies every queued write in one LMDB transaction (one
 * revision each) and acknowledges them after one durable commit. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mvcc_int.h"

#define PURGE_BUSY 512  /* records purged alongside user writes */
#define PURGE_IDLE 8192 /* records purged per transaction when idle */
#define BATCH_BYTES (64ll << 20)
#define MAP_LIMIT (1ll << 40)
#define QUEUE_MAX 65536      /* writes waiting: past it, TooManyRequests */
#define DELAY_MAX_NS 1000000 /* longest wait for a batch to fill */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct blk {
	struct blk *next;
	max_align_t data[];
};

static void *w_alloc(struct mvcc_write *w, size_t n)
{
	struct blk *b = malloc(sizeof *b + n);
	if (!b)
		return NULL;
	b->next = w->mem_;
	w->mem_ = b;
	return b->data;
}

void mvcc_write_release(struct mvcc_write *w)
{
	struct blk *b = w->mem_;
	while (b) {
		struct blk *n = b->next;
		free(b);
		b = n;
	}
	w->mem_ = NULL;
	w->res = NULL;
	w->nres = 0;
}

/* --- validation and queueing -------------------------------------------- */

static int bad(struct mvcc_write *w, int rc, const char *fmt, size_t i)
{
	snprintf(w->err, sizeof w->err, fmt, i);
	w->rc = rc;
	return rc;
}

static int check_op(struct mvcc *m, struct mvcc_write *w,
    const struct mvcc_op *o, size_t i)
{
	if (o->type != MVCC_PUT && o->type != MVCC_DELETE &&
	    o->type != MVCC_GET)
		return bad(w, KB_EINVAL, "op %zu: unknown type", i);
	if (!o->key || o->key_len == 0)
		return bad(w, KB_EINVAL, "op %zu: empty key", i);
	if (o->key_len > MVCC_KEY_MAX)
		return bad(w, KB_EINVAL, "op %zu: key longer than 511 bytes",
		    i);
	if (o->type == MVCC_PUT) {
		if (o->value_len && !o->value)
			return bad(w, KB_EINVAL, "op %zu: no value", i);
		if ((int64_t)o->value_len > m->cfg.value_max) {
			snprintf(w->err, sizeof w->err,
			    "op %zu: value of %zu bytes is over the limit of "
			    "%lld",
			    i, o->value_len, (long long)m->cfg.value_max);
			return w->rc = KB_EINVAL;
		}
	}
	return 0;
}

int mvcc_submit(struct mvcc *m, struct mvcc_write *w)
{
	int rc;

	w->rc = 0;
	w->err[0] = 0;
	w->succeeded = false;
	w->res = NULL;
	w->nres = 0;
	w->mem_ = NULL;
	w->next_ = NULL;
	if (w->kind == MVCC_W_TXN) {
		for (size_t i = 0; i < w->ncmp; i++) {
			const struct mvcc_cmp *c = &w->cmp[i];
			if (!c->key || !c->key_len || c->key_len > MVCC_KEY_MAX)
				return bad(w, KB_EINVAL,
				    "compare %zu: empty or over-long key", i);
			if (c->target < MVCC_MOD || c->target > MVCC_EXISTS)
				return bad(w, KB_EINVAL,
				    "compare %zu: unknown target", i);
			if (c->op < MVCC_EQ || c->op > MVCC_GT)
				return bad(w, KB_EINVAL,
				    "compare %zu: unknown operator", i);
		}
		for (size_t i = 0; i < w->nsuccess; i++)
			if ((rc = check_op(m, w, &w->success[i], i)))
				return rc;
		for (size_t i = 0; i < w->nfailure; i++)
			if ((rc = check_op(m, w, &w->failure[i], i)))
				return rc;
	} else if (w->kind == MVCC_W_COMPACT) {
		if (w->compact_rev <= 0)
			return bad(w, KB_EINVAL,
			    "compact revision must be positive%.0zu", 0);
	} else {
		return bad(w, KB_EINVAL, "unknown write kind%.0zu", 0);
	}

	pthread_mutex_lock(&m->mu);
	if (m->stopping || m->fatal) {
		pthread_mutex_unlock(&m->mu);
		return bad(w, m->fatal ? KB_EUNAVAILABLE : KB_ECLOSED,
		    "store closed%.0zu", 0);
	}
	if (m->qlen >= QUEUE_MAX) {
		pthread_mutex_unlock(&m->mu);
		return bad(w, KB_ETOOMANY,
		    "%zu writes already wait for the "
		    "disk",
		    (size_t)QUEUE_MAX);
	}
	m->qlen++;
	if (m->qtail)
		m->qtail->next_ = w;
	else
		m->qhead = w;
	m->qtail = w;
	if (m->qlen >= m->wake_at)
		pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	mvcc_done_fn fn;
};

static void sync_done(struct mvcc_write *w)
{
	struct waiter *wt = w->sync_;
	pthread_mutex_lock(&wt->mu);
	wt->done = true;
	pthread_cond_signal(&wt->cv);
	pthread_mutex_unlock(&wt->mu);
}

int mvcc_write_sync(struct mvcc *m, struct mvcc_write *w)
{
	struct waiter wt = { .done = false };
	int rc;

	pthread_mutex_init(&wt.mu, NULL);
	pthread_cond_init(&wt.cv, NULL);
	w->sync_ = &wt;
	w->done = sync_done;
	if ((rc = mvcc_submit(m, w)) == 0) {
		pthread_mutex_lock(&wt.mu);
		while (!wt.done)
			pthread_cond_wait(&wt.cv, &wt.mu);
		pthread_mutex_unlock(&wt.mu);
		rc = w->rc;
	}
	w->sync_ = NULL;
	pthread_cond_destroy(&wt.cv);
	pthread_mutex_destroy(&wt.mu);
	return rc;
}

int mvcc_put(struct mvcc *m, const void *key, size_t klen, const void *val,
    size_t vlen, int64_t if_mod_rev, int64_t *rev)
{
	struct mvcc_op op = { MVCC_PUT, key, klen, val, vlen };
	struct mvcc_cmp c = { key, klen, MVCC_MOD, MVCC_EQ, if_mod_rev };
	struct mvcc_write w = { .kind = MVCC_W_TXN,
		.success = &op,
		.nsuccess = 1 };
	int rc;

	if (if_mod_rev >= 0) {
		w.cmp = &c;
		w.ncmp = 1;
	}
	rc = mvcc_write_sync(m, &w);
	if (rc == 0 && !w.succeeded)
		rc = KB_ECONFLICT;
	if (rev)
		*rev = w.rev;
	mvcc_write_release(&w);
	return rc;
}

int mvcc_del(struct mvcc *m, const void *key, size_t klen, int64_t if_mod_rev,
    int64_t *rev, int *deleted)
{
	struct mvcc_op op = { MVCC_DELETE, key, klen, NULL, 0 };
	struct mvcc_cmp c = { key, klen, MVCC_MOD, MVCC_EQ, if_mod_rev };
	struct mvcc_write w = { .kind = MVCC_W_TXN,
		.success = &op,
		.nsuccess = 1 };
	int rc;

	if (if_mod_rev >= 0) {
		w.cmp = &c;
		w.ncmp = 1;
	}
	rc = mvcc_write_sync(m, &w);
	if (rc == 0 && !w.succeeded)
		rc = KB_ECONFLICT;
	if (rev)
		*rev = w.rev;
	if (deleted)
		*deleted = rc == 0 && w.nres ? w.res[0].deleted : 0;
	mvcc_write_release(&w);
	return rc;
}

int mvcc_compact(struct mvcc *m, int64_t rev, int64_t *compacted)
{
	struct mvcc_write w = { .kind = MVCC_W_COMPACT, .compact_rev = rev };
	int rc = mvcc_write_sync(m, &w);
	if (compacted)
		*compacted = w.compacted;
	mvcc_write_release(&w);
	return rc;
}

/* --- applying -------------------------------------------------------------- */

struct batch {
	struct mvcc_event *ev;
	size_t nev, cap;
};

static struct mvcc_event *ev_push(struct batch *b)
{
	if (b->nev == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct mvcc_event *n = realloc(b->ev, cap * sizeof *n);
		if (!n)
			return NULL;
		b->ev = n;
		b->cap = cap;
	}
	memset(&b->ev[b->nev], 0, sizeof b->ev[0]);
	return &b->ev[b->nev++];
}

/* The key's kv entry: *entry when there is one (a tombstone too), *live
 * when it holds a value; header and value borrowed until the next write.
 * The cursor kc (on kv) is left on the entry when there is one, for
 * write_change to replace it without searching again. */
static int kv_lookup(MDB_cursor *kc, const void *key, size_t klen,
    struct kvhdr *h, MDB_val *val, bool *entry, bool *live)
{
	MDB_val k = { klen, (void *)key }, v;
	int rc = mdb_cursor_get(kc, &k, &v, MDB_SET_KEY);
	*entry = *live = false;
	memset(h, 0, sizeof *h);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	kvhdr_dec(&v, h);
	*entry = true;
	*live = !(h->flags & KV_TOMB);
	if (val) {
		val->mv_data = (char *)v.mv_data + KV_HDR;
		val->mv_size = v.mv_size - KV_HDR;
	}
	return 0;
}

static bool cmp_holds(int op, int64_t a, int64_t b)
{
	switch (op) {
	case MVCC_EQ:
		return a == b;
	case MVCC_NE:
		return a != b;
	case MVCC_LT:
		return a < b;
	case MVCC_GT:
		return a > b;
	}
	return false;
}

/* Copy a kv into the write's memory. */
static int kv_copy(struct mvcc_write *w, struct mvcc_kv *dst, const void *key,
    size_t klen, const MDB_val *val, const struct kvhdr *h)
{
	size_t vlen = val ? val->mv_size : 0;
	char *p = w_alloc(w, klen + vlen + 1);
	if (!p)
		return ENOMEM;
	memcpy(p, key, klen);
	if (vlen)
		memcpy(p + klen, val->mv_data, vlen);
	dst->key = p;
	dst->key_len = klen;
	dst->value = val ? p + klen : NULL;
	dst->value_len = vlen;
	dst->create_rev = h->create;
	dst->mod_rev = h->mod;
	dst->version = h->version;
	return 0;
}

/* kc: on o's kv entry when `entry` (kv_lookup of that key just before). */
static int write_change(struct mvcc *m, MDB_txn *txn, MDB_cursor *kc,
    bool entry, const struct mvcc_op *o, int64_t rev, uint32_t sub,
    const struct kvhdr *nh, struct rpos prev)
{
	unsigned char rk[RKEY_LEN];
	bool put = o->type == MVCC_PUT;
	MDB_val k = { o->key_len, (void *)o->key }, v;
	struct rec rec = {
		.type = put ? REC_PUT : REC_DEL,
		.key = o->key,
		.key_len = o->key_len,
		.create = put ? nh->create : 0,
		.version = put ? nh->version : 0,
		.prev = prev,
		.value = put ? o->value : NULL,
		.value_len = put ? o->value_len : 0,
	};
	size_t rsz = rec_size(rec.key_len, rec.value_len);
	int rc;

	/* a delete leaves a tombstone: reads at older revisions start from
	 * it, and compaction removes it */
	v.mv_size = KV_HDR + rec.value_len;
	if ((rc = mdb_cursor_put(kc, &k, &v,
		 MDB_RESERVE | (entry ? MDB_CURRENT : 0))))
		return rc;
	unsigned char *p = v.mv_data;
	put_u64(p, (uint64_t)rec.create);
	put_u64(p + 8, (uint64_t)rev);
	put_u64(p + 16, (uint64_t)rec.version);
	put_u32(p + 24, sub);
	put_u32(p + 28, put ? 0 : KV_TOMB);
	if (rec.value_len)
		memcpy(p + KV_HDR, rec.value, rec.value_len);
	rkey_enc(rk, (uint64_t)rev, sub);
	MDB_val rkv = { RKEY_LEN, rk };
	v.mv_size = rsz;
	if ((rc = mdb_put(txn, m->rev, &rkv, &v, MDB_RESERVE | MDB_APPEND)))
		return rc;
	rec_enc(v.mv_data, &rec);
	m->wbytes += rsz;
	return 0;
}

static int apply_txn(struct mvcc *m, MDB_txn *txn, MDB_cursor *kc,
    struct mvcc_write *w, struct batch *b)
{
	const struct mvcc_op *ops;
	size_t nops;
	int64_t rev = 0;
	uint32_t sub = 0;
	bool ok = true;
	int rc;

	for (size_t i = 0; i < w->ncmp && ok; i++) {
		const struct mvcc_cmp *c = &w->cmp[i];
		struct kvhdr h;
		bool ent, ex;
		int64_t x = 0;
		if ((rc = kv_lookup(kc, c->key, c->key_len, &h, NULL, &ent,
			 &ex)))
			return rc;
		if (!ex)
			memset(&h, 0, sizeof h);
		switch (c->target) {
		case MVCC_MOD:
			x = h.mod;
			break;
		case MVCC_CREATE:
			x = h.create;
			break;
		case MVCC_VERSION:
			x = h.version;
			break;
		case MVCC_EXISTS:
			x = ex;
			break;
		}
		ok = cmp_holds(c->op, x, c->value);
	}
	ops = ok ? w->success : w->failure;
	nops = ok ? w->nsuccess : w->nfailure;
	w->succeeded = ok;
	if (nops && !(w->res = w_alloc(w, nops * sizeof *w->res)))
		return ENOMEM;
	if (nops)
		memset(w->res, 0, nops * sizeof *w->res);
	w->nres = nops;

	for (size_t i = 0; i < nops; i++) {
		const struct mvcc_op *o = &ops[i];
		struct mvcc_op_res *r = &w->res[i];
		struct kvhdr h, nh;
		struct mvcc_kv prev;
		struct rpos pp = { 0, 0 };
		MDB_val val;
		bool ent, ex;
		struct mvcc_event *ev;

		r->type = o->type;
		if ((rc = kv_lookup(kc, o->key, o->key_len, &h, &val, &ent,
			 &ex)))
			return rc;
		if (o->type == MVCC_GET) {
			if (ex) {
				if ((rc = kv_copy(w, &r->kv, o->key, o->key_len,
					 &val, &h)))
					return rc;
				r->has_kv = true;
			}
			continue;
		}
		if (o->type == MVCC_DELETE && !ex)
			continue;
		if (ent) {
			/* chain to the previous change, a tombstone included */
			pp.rev = (uint64_t)h.mod;
			pp.sub = h.sub;
		}
		/* copy before the page under it changes */
		if (ex &&
		    (rc = kv_copy(w, &prev, o->key, o->key_len, &val, &h)))
			return rc;
		if (!rev)
			rev = m->cur_rev + 1;
		memset(&nh, 0, sizeof nh);
		if (o->type == MVCC_PUT) {
			nh.create = ex ? h.create : rev;
			nh.mod = rev;
			nh.version = ex ? h.version + 1 : 1;
		}
		if ((rc = write_change(m, txn, kc, ent, o, rev, sub, &nh,
			 pp)))
			return rc;
		if (!(ev = ev_push(b)))
			return ENOMEM;
		ev->type = o->type;
		ev->kv.key = o->key;
		ev->kv.key_len = o->key_len;
		ev->kv.mod_rev = rev;
		if (o->type == MVCC_PUT) {
			ev->kv.value = o->value ? o->value : "";
			ev->kv.value_len = o->value_len;
			ev->kv.create_rev = nh.create;
			ev->kv.version = nh.version;
			r->rev = rev;
			r->has_kv = true;
			r->kv = ev->kv;
			r->kv.value = NULL;
			r->kv.value_len = 0;
		} else {
			r->deleted = 1;
		}
		if (ex) {
			ev->has_prev = true;
			ev->prev = prev;
			if (w->want_prev) {
				r->has_prev = true;
				r->prev = prev;
			}
		}
		sub++;
	}
	if (rev)
		m->cur_rev = rev;
	w->rev = m->cur_rev;
	w->compacted = m->compact_rev;
	return 0;
}

static void apply_compact(struct mvcc *m, struct mvcc_write *w)
{
	if (w->compact_rev > m->cur_rev) {
		w->rc = KB_EINVAL;
		snprintf(w->err, sizeof w->err,
		    "revision %lld is in the future (current %lld)",
		    (long long)w->compact_rev, (long long)m->cur_rev);
	} else if (w->compact_rev > m->compact_rev) {
		m->compact_rev = w->compact_rev;
	}
	w->rev = m->cur_rev;
	w->compacted = m->compact_rev;
}

static int grow_map(struct mvcc *m)
{
	int64_t want = m->map_size * 2;
	int rc;

	if (want > MAP_LIMIT)
		return MDB_MAP_FULL;
	pthread_rwlock_wrlock(&m->maplock);
	rc = mdb_env_set_mapsize(m->env, (size_t)want);
	if (!rc)
		m->map_size = want;
	pthread_rwlock_unlock(&m->maplock);
	return rc;
}

static bool purge_pending(const struct mvcc *m)
{
	return (int64_t)m->purged.rev < m->compact_rev;
}

/* The filler keeps the data file written (with zeros) a stretch beyond
 * LMDB's last page, as databases preallocate their logs. A commit whose
 * new pages lie past the end of the file grows it, and its fdatasync must
 * then also make the file's new size and blocks durable: one more write
 * (the inode) that waits for the data pages and is waited for before the
 * flush, on every such commit. Pages inside blocks already written are
 * overwrites, which fdatasync makes durable with the data and one flush.
 * LMDB takes no notice of a file longer than its last page.
 *
 * Zeros are written only past the file's end and only while the committer
 * is outside a transaction (both hold fill_mu), so they never land on a
 * page LMDB wrote; LMDB writes pages only inside a write transaction, and
 * only the committer opens those. The filler's own thread then writes them
 * out (sync_file_range: no flush, and the commits' fdatasync makes the
 * file's size durable once), in chunks, so a commit waits at most for one
 * chunk's writeback. If the store grows faster than the filler, commits
 * grow the file as before; on an error (a full disk) filling stops. */
#define AHEAD_MIN (2ll << 20)  /* ask for more when less is left */
#define AHEAD_FILL (4ll << 20) /* ... up to this past the last page */
#define FILL_CHUNK (64 << 10) /* 16 pages a turn: the committer waits for fill_mu */
#define FILL_PAGE 4096

static void *filler(void *arg)
{
	static const char zeros[FILL_PAGE];
	struct mvcc *m = arg;
	int fd;

	pthread_setname_np(pthread_self(), "lmdb:fill");
	pthread_mutex_lock(&m->fill_mu);
	if (mdb_env_get_fd(m->env, &fd))
		m->ahead_end = -1;
	for (;;) {
		while (!m->fill_stop &&
		    (m->ahead_end < 0 || m->ahead_end >= m->fill_want))
			pthread_cond_wait(&m->fill_cv, &m->fill_mu);
		if (m->fill_stop)
			break;
		struct stat fs;
		if (fstat(fd, &fs)) {
			m->ahead_end = -1;
			continue;
		}
		int64_t at = fs.st_size;
		if (at >= m->fill_want) {
			m->ahead_end = at;
			continue;
		}
		size_t n = m->fill_want - at < FILL_CHUNK ?
		    (size_t)(m->fill_want - at) : FILL_CHUNK;
		/* a page at a time: the page cache gives a write a folio as
		 * large as the write (ext4's large folios, Linux 6.16 on), and
		 * writeback writes a dirty folio whole, so a 4 KiB page LMDB
		 * later writes inside a 64 KiB folio of zeros would cost
		 * 64 KiB of I/O at every commit that touches it */
		ssize_t k = 0;
		while ((size_t)k < n) {
			size_t left = n - (size_t)k;
			ssize_t w = pwrite(fd, zeros, left < FILL_PAGE ? left : FILL_PAGE, at + k);
			if (w <= 0)
				break;
			k += w;
		}
		if (k <= 0) {
			m->ahead_end = -1;
			continue;
		}
		m->ahead_end = at + k;
		pthread_mutex_unlock(&m->fill_mu);
		sync_file_range(fd, at, k, SYNC_FILE_RANGE_WAIT_BEFORE |
		    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
		pthread_mutex_lock(&m->fill_mu);
	}
	pthread_mutex_unlock(&m->fill_mu);
	return NULL;
}

/* Under fill_mu, after a batch: more zeros wanted? */
static void fill_ask(struct mvcc *m)
{
	MDB_envinfo info;
	MDB_stat st;

	if (!m->fill_started || m->ahead_end < 0 ||
	    mdb_env_info(m->env, &info) || mdb_env_stat(m->env, &st))
		return;
	int64_t used = ((int64_t)info.me_last_pgno + 1) * st.ms_psize;
	int64_t want = used + AHEAD_FILL;
	if (want > m->map_size)
		want = m->map_size;
	if (m->ahead_end - used < AHEAD_MIN && want > m->fill_want) {
		m->fill_want = want;
		pthread_cond_signal(&m->fill_cv);
	}
}

/* Apply `list` (may be empty: maintenance only) in one transaction. */
static void run_batch(struct mvcc *m, struct mvcc_write *list, bool autoc)
{
	struct batch b = { 0 };
	int64_t s_rev = m->cur_rev, s_compact = m->compact_rev;
	uint64_t s_wbytes = m->wbytes;
	struct rpos s_purged = m->purged;
	struct mvcc_write *w, *next;
	MDB_txn *txn = NULL;
	MDB_cursor *kc = NULL;
	int rc;
	size_t nw = 0;

	for (w = list; w; w = w->next_)
		nw++;
retry:
	b.nev = 0;
	if ((rc = mdb_txn_begin(m->env, NULL, 0, &txn)))
		goto fail;
	/* one cursor on kv for the batch: a write's lookup leaves it where
	 * the write goes (closed by the abort on failure) */
	if (list && (rc = mdb_cursor_open(txn, m->kv, &kc)))
		goto fail_abort;
	for (w = list; w; w = w->next_) {
		mvcc_write_release(w);
		w->rc = 0;
		w->err[0] = 0;
		if (w->kind == MVCC_W_COMPACT)
			apply_compact(m, w);
		else if ((rc = apply_txn(m, txn, kc, w, &b)))
			goto fail_abort;
	}
	if (kc) {
		mdb_cursor_close(kc);
		kc = NULL;
	}
	if (autoc) {
		int64_t t = 0;
		if ((rc = mvcc_auto_target(m, txn, &t)))
			goto fail_abort;
		if (t > m->compact_rev)
			m->compact_rev = t;
	}
	if (purge_pending(m)) {
		bool left;
		if ((rc = mvcc_purge(m, txn, list ? PURGE_BUSY : PURGE_IDLE,
			 &left)))
			goto fail_abort;
	}
	if (!list && m->compact_rev == s_compact &&
	    rpos_cmp(m->purged, s_purged) == 0) {
		/* an idle tick that found nothing to do: no commit, no fsync */
		mdb_txn_abort(txn);
		free(b.ev);
		return;
	}
	if ((rc = meta_store(m, txn)))
		goto fail_abort;
	int64_t tc = now_ns();
	size_t txnid = mdb_txn_id(txn);
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc)
		goto fail;
	{
		/* readers on this snapshot take its revisions from here
		 * (when the commit wrote anything: else the next one takes
		 * the same transaction id) */
		MDB_envinfo info;
		if (!mdb_env_info(m->env, &info) &&
		    info.me_last_txnid == txnid)
			mvcc_snap_publish(m, txnid, m->cur_rev,
			    m->compact_rev);
	}
	if (list) {
		m->last_commit_ns = now_ns() - tc;
		m->last_batch = (long)nw;
	}

	m->st_commits++;
	m->st_writes += (long long)nw;
	m->st_rev = m->cur_rev;
	m->st_compact = m->compact_rev;
	pthread_mutex_lock(&m->notify_mu);
	if (b.nev && m->listen)
		m->listen(m->listen_arg, b.ev, b.nev, m->cur_rev);
	m->notified_rev = m->cur_rev;
	pthread_mutex_unlock(&m->notify_mu);
	free(b.ev);
	for (w = list; w; w = next) {
		next = w->next_;
		w->done(w);
	}
	return;

fail_abort:
	mdb_txn_abort(txn);
	txn = NULL;
	kc = NULL; /* closed with the transaction */
fail:
	m->cur_rev = s_rev;
	m->compact_rev = s_compact;
	m->wbytes = s_wbytes;
	m->purged = s_purged;
	if (rc == MDB_MAP_FULL && grow_map(m) == 0)
		goto retry;
	if (rc == MDB_TXN_FULL && nw > 1) {
		/* too much for one transaction: one write at a time */
		for (w = list; w; w = next) {
			next = w->next_;
			w->next_ = NULL;
			run_batch(m, w, false);
		}
		free(b.ev);
		return;
	}
	if (rc == MDB_PANIC)
		m->fatal = rc;
	free(b.ev);
	/* LMDB writes the meta page last: a failed commit leaves the last
	 * good one in place, and the file is as it was */
	bool full = rc == ENOSPC || rc == EDQUOT || rc == EFBIG;
	for (w = list; w; w = next) {
		next = w->next_;
		mvcc_write_release(w);
		w->rc = full || rc == MDB_MAP_FULL ? KB_EUNAVAILABLE :
						     mvcc_lmdb_err(rc);
		snprintf(w->err, sizeof w->err, "store write failed%s: %s",
		    full ? ", the disk is full" : "", mdb_strerror(rc));
		w->done(w);
	}
}

static size_t write_bytes(const struct mvcc_write *w)
{
	size_t n = 64;
	for (size_t i = 0; i < w->nsuccess; i++)
		n += w->success[i].key_len + w->success[i].value_len;
	for (size_t i = 0; i < w->nfailure; i++)
		n += w->failure[i].key_len + w->failure[i].value_len;
	return n;
}

static void *committer(void *arg)
{
	struct mvcc *m = arg;
	pthread_setname_np(pthread_self(), "lmdb:commit");
	/* Every write in the process waits for this thread, which spends
	 * most of its time in fdatasync: when it wakes it should run before
	 * the threads whose writes it holds. Refused without CAP_SYS_NICE
	 * (a nice value below the process's), and then it runs as they do. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), m->cfg.committer_nice);

	for (;;) {
		struct mvcc_write *list = NULL, *tail = NULL;
		int64_t n = 0, bytes = 0, now;
		bool autoc = false, stop;

		pthread_mutex_lock(&m->mu);
		for (;;) {
			now = mvcc_now_ms();
			if (m->cfg.compact_interval_ms > 0 &&
			    now - m->last_auto_ms >= m->cfg.compact_interval_ms)
				autoc = true;
			if (m->qhead || m->stopping || autoc ||
			    purge_pending(m))
				break;
			m->wake_at = 1;
			if (m->cfg.compact_interval_ms > 0) {
				struct timespec ts;
				int64_t wait = m->cfg.compact_interval_ms -
				    (now - m->last_auto_ms);
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += wait / 1000;
				ts.tv_nsec += (wait % 1000) * 1000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&m->cv, &m->mu, &ts);
			} else {
				pthread_cond_wait(&m->cv, &m->mu);
			}
		}
		/* Writers just answered come back within a moment: when fewer
		 * are queued than the last commit carried, give them a fraction
		 * of a commit's time to join, so they share the next fsync. */
		if (m->qhead && m->qlen < m->last_batch && !m->stopping) {
			int64_t d = m->last_commit_ns / 4;
			struct timespec ts;
			if (d > DELAY_MAX_NS)
				d = DELAY_MAX_NS;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += d;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			m->wake_at = m->last_batch;
			while (m->qlen < m->last_batch && !m->stopping &&
			    pthread_cond_timedwait(&m->cv, &m->mu, &ts) == 0)
				;
		}
		m->wake_at = LONG_MAX;
		while (m->qhead && n < m->cfg.batch_max &&
		    (n == 0 || bytes < BATCH_BYTES)) {
			struct mvcc_write *w = m->qhead;
			m->qhead = w->next_;
			if (!m->qhead)
				m->qtail = NULL;
			w->next_ = NULL;
			m->qlen--;
			if (tail)
				tail->next_ = w;
			else
				list = w;
			tail = w;
			n++;
			bytes += (int64_t)write_bytes(w);
		}
		stop = m->stopping && !m->qhead && !list;
		pthread_mutex_unlock(&m->mu);
		if (stop)
			break;
		if (autoc)
			m->last_auto_ms = now;
		if (m->fatal) {
			for (struct mvcc_write *w = list, *nx; w; w = nx) {
				nx = w->next_;
				w->rc = KB_EUNAVAILABLE;
				snprintf(w->err, sizeof w->err,
				    "store unavailable after an LMDB panic");
				w->done(w);
			}
			if (!list) {
				/* nothing more can be done: wait to stop */
				pthread_mutex_lock(&m->mu);
				m->wake_at = 1;
				while (!m->stopping && !m->qhead)
					pthread_cond_wait(&m->cv, &m->mu);
				m->wake_at = LONG_MAX;
				pthread_mutex_unlock(&m->mu);
			}
			continue;
		}
		if (!list && m->stopping)
			continue;
		pthread_mutex_lock(&m->fill_mu);
		run_batch(m, list, autoc);
		fill_ask(m);
		pthread_mutex_unlock(&m->fill_mu);
	}
	return NULL;
}

int mvcc_committer_start(struct mvcc *m)
{
	m->fill_stop = false;
	m->fill_want = m->ahead_end = 0;
	/* without sync nothing waits for the file's size: no filler */
	if (m->cfg.sync && pthread_create(&m->fill_thr, NULL, filler, m) == 0)
		m->fill_started = true;
	if (pthread_create(&m->thr, NULL, committer, m)) {
		mvcc_committer_stop(m);
		return KB_ESYS;
	}
	m->thr_started = true;
	return 0;
}

/* Tell a thread that waits on cv under mu to stop (*flag), and join it. */
static void stop_thread(pthread_t thr, pthread_mutex_t *mu, pthread_cond_t *cv,
    bool *flag, bool *started)
{
	if (!*started)
		return;
	pthread_mutex_lock(mu);
	*flag = true;
	pthread_cond_signal(cv);
	pthread_mutex_unlock(mu);
	pthread_join(thr, NULL);
	*started = false;
}

void mvcc_committer_stop(struct mvcc *m)
{
	stop_thread(m->thr, &m->mu, &m->cv, &m->stopping, &m->thr_started);
	stop_thread(m->fill_thr, &m->fill_mu, &m->fill_cv, &m->fill_stop,
	    &m->fill_started);
}
