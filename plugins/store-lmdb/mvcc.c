/* mvcc.c — the engine's environment, record formats and read path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "mvcc_int.h"

#define READER_CACHE 16

int64_t mvcc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mvcc_lmdb_err(int mrc)
{
	switch (mrc) {
	case 0:
		return 0;
	case ENOMEM:
		return KB_ENOMEM;
	case ENOSPC:
	case EIO:
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return KB_EUNAVAILABLE;
	default:
		return KB_EINTERNAL;
	}
}

void kvhdr_dec(const MDB_val *v, struct kvhdr *h)
{
	const unsigned char *p = v->mv_data;
	h->create = (int64_t)get_u64(p);
	h->mod = (int64_t)get_u64(p + 8);
	h->version = (int64_t)get_u64(p + 16);
	h->sub = get_u32(p + 24);
	h->flags = get_u32(p + 28);
}

size_t rec_size(size_t klen, size_t vlen)
{
	return REC_HDR + klen + vlen;
}

void rec_enc(void *buf, const struct rec *r)
{
	unsigned char *p = buf;
	memset(p, 0, REC_HDR);
	p[0] = (unsigned char)r->type;
	put_u32(p + 4, (uint32_t)r->key_len);
	put_u64(p + 8, (uint64_t)r->create);
	put_u64(p + 16, (uint64_t)r->version);
	put_u64(p + 24, r->prev.rev);
	put_u32(p + 32, r->prev.sub);
	memcpy(p + REC_HDR, r->key, r->key_len);
	if (r->value_len)
		memcpy(p + REC_HDR + r->key_len, r->value, r->value_len);
}

int rec_dec(const MDB_val *v, struct rec *r)
{
	const unsigned char *p = v->mv_data;
	if (v->mv_size < REC_HDR)
		return KB_EINTERNAL;
	r->type = p[0];
	r->key_len = get_u32(p + 4);
	if (r->key_len > v->mv_size - REC_HDR)
		return KB_EINTERNAL;
	r->create = (int64_t)get_u64(p + 8);
	r->version = (int64_t)get_u64(p + 16);
	r->prev.rev = get_u64(p + 24);
	r->prev.sub = get_u32(p + 32);
	r->key = (const char *)p + REC_HDR;
	r->value = p + REC_HDR + r->key_len;
	r->value_len = v->mv_size - REC_HDR - r->key_len;
	return 0;
}

static int meta_get_u64(struct mvcc *m, MDB_txn *txn, const char *name,
    uint64_t *out)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	int rc = mdb_get(txn, m->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc)
		return rc;
	*out = v.mv_size >= 8 ? get_u64(v.mv_data) : 0;
	return 0;
}

int meta_load(struct mvcc *m, MDB_txn *txn, int64_t *rev, int64_t *compact,
    uint64_t *wbytes, struct rpos *purged)
{
	uint64_t r = 0, c = 0;
	int rc = meta_get_u64(m, txn, "rev", &r);
	if (!rc)
		rc = meta_get_u64(m, txn, "compact", &c);
	if (rc)
		return rc;
	*rev = (int64_t)r;
	*compact = (int64_t)c;
	if (wbytes && (rc = meta_get_u64(m, txn, "wbytes", wbytes)))
		return rc;
	if (purged) {
		MDB_val k = { 6, "purged" }, v;
		rc = mdb_get(txn, m->meta, &k, &v);
		if (rc == MDB_NOTFOUND) {
			purged->rev = 0;
			purged->sub = 0;
			rc = 0;
		} else if (!rc) {
			*purged = rkey_dec(v.mv_data);
		}
	}
	return rc;
}

int meta_store(struct mvcc *m, MDB_txn *txn)
{
	unsigned char buf[12];
	MDB_val k, v = { 8, buf };
	int rc;

	put_u64(buf, (uint64_t)m->cur_rev);
	k.mv_data = "rev";
	k.mv_size = 3;
	if ((rc = mdb_put(txn, m->meta, &k, &v, 0)))
		return rc;
	put_u64(buf, (uint64_t)m->compact_rev);
	k.mv_data = "compact";
	k.mv_size = 7;
	if ((rc = mdb_put(txn, m->meta, &k, &v, 0)))
		return rc;
	put_u64(buf, m->wbytes);
	k.mv_data = "wbytes";
	k.mv_size = 6;
	if ((rc = mdb_put(txn, m->meta, &k, &v, 0)))
		return rc;
	rkey_enc(buf, m->purged.rev, m->purged.sub);
	k.mv_data = "purged";
	k.mv_size = 6;
	v.mv_size = 12;
	return mdb_put(txn, m->meta, &k, &v, 0);
}

int kv_at(MDB_txn *txn, MDB_dbi revdb, const MDB_val *k, const MDB_val *v,
    int64_t rev, bool keys_only, struct mvcc_kv *out, bool *found)
{
	unsigned char rk[RKEY_LEN];
	MDB_val rkv = { RKEY_LEN, rk }, rv;
	struct kvhdr h;
	struct rec rec;
	struct rpos p;
	int rc;

	*found = false;
	kvhdr_dec(v, &h);
	if (h.mod <= rev) {
		/* the latest change is old enough: the kv entry says it all */
		if (h.flags & KV_TOMB)
			return 0;
		out->key = k->mv_data;
		out->key_len = k->mv_size;
		out->create_rev = h.create;
		out->mod_rev = h.mod;
		out->version = h.version;
		out->value = keys_only ? NULL :
					 (const char *)v->mv_data + KV_HDR;
		out->value_len = keys_only ? 0 : v->mv_size - KV_HDR;
		*found = true;
		return 0;
	}
	p.rev = (uint64_t)h.mod;
	p.sub = h.sub;
	/* walk back; a missing record was purged: superseded at or below the
	 * compact revision by a delete, so the key did not exist at `rev` */
	for (;;) {
		rkey_enc(rk, p.rev, p.sub);
		if ((rc = mdb_get(txn, revdb, &rkv, &rv)))
			return rc == MDB_NOTFOUND ? 0 : mvcc_lmdb_err(rc);
		if (rec_dec(&rv, &rec))
			return KB_EINTERNAL;
		if ((int64_t)p.rev <= rev)
			break;
		if (rec.prev.rev == 0)
			return 0;
		p = rec.prev;
	}
	if (rec.type != REC_PUT)
		return 0;
	out->key = rec.key;
	out->key_len = rec.key_len;
	out->value = keys_only ? NULL : rec.value;
	out->value_len = keys_only ? 0 : rec.value_len;
	out->create_rev = rec.create;
	out->mod_rev = (int64_t)p.rev;
	out->version = rec.version;
	*found = true;
	return 0;
}

/* --- open / close ---------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0700) && errno != EEXIST) {
			int e = errno;
			free(p);
			return e;
		}
		*s = '/';
	}
	int rc = (mkdir(p, 0700) && errno != EEXIST) ? errno : 0;
	free(p);
	return rc;
}

int mvcc_open(const struct mvcc_config *cfg, struct mvcc **out, char *err,
    size_t errlen)
{
	struct mvcc *m;
	MDB_txn *txn;
	int rc, dead = 0;
	/* No readahead on the map (MADV_RANDOM): since Linux 6.16 a
	 * readahead fills ext4's cache with folios of up to a few hundred
	 * KiB, and writeback writes a dirty folio whole, so every page LMDB
	 * then wrote there would cost that much I/O at each commit (the
	 * engine test test_write_amplification). Reads are of B-tree pages,
	 * which readahead guesses poorly anyway. */
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;

	*out = NULL;
	if (!cfg->path || !*cfg->path) {
		snprintf(err, errlen, "no path given");
		return KB_EINVAL;
	}
	if ((rc = mkdir_p(cfg->path))) {
		snprintf(err, errlen, "cannot create %s: %s", cfg->path,
		    strerror(rc));
		return KB_ESYS;
	}
	if (!(m = calloc(1, sizeof *m)) || !(m->path = strdup(cfg->path))) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return KB_ENOMEM;
	}
	m->cfg = *cfg;
	m->cfg.path = m->path;
	if (m->cfg.batch_max <= 0)
		m->cfg.batch_max = 1024;
	if (m->cfg.value_max <= 0)
		m->cfg.value_max = 1536 * 1024;
	m->map_size = cfg->map_size > 0 ? cfg->map_size : 64ll << 20;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&m->maplock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&m->rmu, NULL);
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	pthread_mutex_init(&m->notify_mu, NULL);
	pthread_mutex_init(&m->fill_mu, NULL);
	pthread_cond_init(&m->fill_cv, NULL);

	if (!cfg->sync)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_create(&m->env)))
		goto out_lmdb;
	mdb_env_set_maxdbs(m->env, 4);
	mdb_env_set_maxreaders(m->env, 512);
	mdb_env_set_mapsize(m->env, (size_t)m->map_size);
	if ((rc = mdb_env_open(m->env, m->path, flags, 0600)))
		goto out_lmdb;
	/* readers left by a killed process would pin old pages forever */
	mdb_reader_check(m->env, &dead);
	{
		MDB_envinfo info;
		mdb_env_info(m->env, &info);
		m->map_size = (int64_t)info.me_mapsize;
	}
	if ((rc = mdb_txn_begin(m->env, NULL, 0, &txn)))
		goto out_lmdb;
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &m->meta)) ||
	    (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &m->kv)) ||
	    (rc = mdb_dbi_open(txn, "rev", MDB_CREATE, &m->rev)) ||
	    (rc = meta_load(m, txn, &m->cur_rev, &m->compact_rev, &m->wbytes,
		 &m->purged))) {
		mdb_txn_abort(txn);
		goto out_lmdb;
	}
	/* nothing published: this commit may have changed nothing, and then
	 * the next one takes its transaction id */
	if ((rc = mdb_txn_commit(txn)))
		goto out_lmdb;
	m->notified_rev = m->cur_rev;
	m->st_rev = m->cur_rev;
	m->st_compact = m->compact_rev;
	m->last_auto_ms = mvcc_now_ms();
	if ((rc = mvcc_committer_start(m))) {
		snprintf(err, errlen, "cannot start the committer thread");
		mdb_env_close(m->env);
		m->env = NULL;
		mvcc_close(m);
		return rc;
	}
	*out = m;
	return 0;

out_lmdb:
	snprintf(err, errlen, "lmdb %s: %s", m->path, mdb_strerror(rc));
	if (m->env)
		mdb_env_close(m->env);
	m->env = NULL;
	mvcc_close(m);
	return rc == ENOENT || rc == EACCES ? KB_ESYS : mvcc_lmdb_err(rc);
}

void mvcc_close(struct mvcc *m)
{
	if (!m)
		return;
	mvcc_committer_stop(m);
	while (m->rfree) {
		struct mvcc_reader *r = m->rfree;
		m->rfree = r->next;
		mdb_txn_abort(r->txn);
		free(r);
	}
	if (m->env)
		mdb_env_close(m->env);
	pthread_rwlock_destroy(&m->maplock);
	pthread_mutex_destroy(&m->rmu);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->notify_mu);
	pthread_mutex_destroy(&m->fill_mu);
	pthread_cond_destroy(&m->fill_cv);
	free(m->path);
	free(m);
}

void mvcc_set_listener(struct mvcc *m, mvcc_listen_fn fn, void *arg)
{
	pthread_mutex_lock(&m->notify_mu);
	m->listen = fn;
	m->listen_arg = arg;
	pthread_mutex_unlock(&m->notify_mu);
}

void mvcc_locked(struct mvcc *m, void (*fn)(void *arg, int64_t rev), void *arg)
{
	pthread_mutex_lock(&m->notify_mu);
	fn(arg, m->notified_rev);
	pthread_mutex_unlock(&m->notify_mu);
}

/* --- readers -------------------------------------------------------------- */

void mvcc_snap_publish(struct mvcc *m, size_t txnid, int64_t rev,
    int64_t compact)
{
	unsigned seq = atomic_load_explicit(&m->snap_seq, memory_order_relaxed);

	atomic_store_explicit(&m->snap_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&m->snap_txnid, txnid, memory_order_relaxed);
	atomic_store_explicit(&m->snap_rev, rev, memory_order_relaxed);
	atomic_store_explicit(&m->snap_compact, compact, memory_order_relaxed);
	atomic_store_explicit(&m->snap_seq, seq + 2, memory_order_release);
}

/* The revisions of the reader's snapshot: from the last commit's when the
 * snapshot is that commit's (the usual case), else from meta. */
static int snap_load(struct mvcc *m, struct mvcc_reader *r)
{
	unsigned s1 = atomic_load_explicit(&m->snap_seq, memory_order_acquire);
	if (!(s1 & 1)) {
		size_t id = atomic_load_explicit(&m->snap_txnid,
		    memory_order_relaxed);
		int64_t rev = atomic_load_explicit(&m->snap_rev,
		    memory_order_relaxed);
		int64_t compact = atomic_load_explicit(&m->snap_compact,
		    memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&m->snap_seq, memory_order_relaxed) ==
			s1 &&
		    id != 0 && id == mdb_txn_id(r->txn)) {
			r->rev = rev;
			r->compact = compact;
			return 0;
		}
	}
	return meta_load(m, r->txn, &r->rev, &r->compact, NULL, NULL);
}

int mvcc_read_begin(struct mvcc *m, struct mvcc_reader **out)
{
	struct mvcc_reader *r;
	int rc;

	pthread_rwlock_rdlock(&m->maplock);
	pthread_mutex_lock(&m->rmu);
	if ((r = m->rfree)) {
		m->rfree = r->next;
		m->nrfree--;
	}
	pthread_mutex_unlock(&m->rmu);
	if (r) {
		rc = mdb_txn_renew(r->txn);
		if (rc) {
			mdb_txn_abort(r->txn);
			r->txn = NULL;
		}
	} else {
		if (!(r = calloc(1, sizeof *r))) {
			pthread_rwlock_unlock(&m->maplock);
			return KB_ENOMEM;
		}
		r->m = m;
	}
	if (!r->txn &&
	    (rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &r->txn))) {
		free(r);
		pthread_rwlock_unlock(&m->maplock);
		return mvcc_lmdb_err(rc);
	}
	if ((rc = snap_load(m, r))) {
		mdb_txn_abort(r->txn);
		free(r);
		pthread_rwlock_unlock(&m->maplock);
		return mvcc_lmdb_err(rc);
	}
	*out = r;
	return 0;
}

void mvcc_read_end(struct mvcc_reader *r)
{
	struct mvcc *m;

	if (!r)
		return;
	m = r->m;
	mdb_txn_reset(r->txn);
	pthread_mutex_lock(&m->rmu);
	if (m->nrfree < READER_CACHE) {
		r->next = m->rfree;
		m->rfree = r;
		m->nrfree++;
		r = NULL;
	}
	pthread_mutex_unlock(&m->rmu);
	if (r) {
		mdb_txn_abort(r->txn);
		free(r);
	}
	pthread_rwlock_unlock(&m->maplock);
}

int64_t mvcc_reader_rev(const struct mvcc_reader *r)
{
	return r->rev;
}

int64_t mvcc_reader_compact_rev(const struct mvcc_reader *r)
{
	return r->compact;
}

static int check_rev(struct mvcc_reader *r, int64_t *rev)
{
	if (*rev <= 0 || *rev == r->rev) {
		*rev = 0;
		return 0;
	}
	if (*rev > r->rev)
		return KB_EINVAL;
	if (*rev < r->compact)
		return KB_EEXPIRED;
	return 0;
}

int mvcc_get(struct mvcc_reader *r, const void *key, size_t klen, int64_t rev,
    struct mvcc_kv *out, bool *found)
{
	MDB_val k = { klen, (void *)key }, v;
	int rc;

	*found = false;
	if (klen == 0 || klen > MVCC_KEY_MAX)
		return KB_EINVAL;
	if ((rc = check_rev(r, &rev)))
		return rc;
	rc = mdb_get(r->txn, r->m->kv, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return mvcc_lmdb_err(rc);
	return kv_at(r->txn, r->m->rev, &k, &v, rev ? rev : INT64_MAX, false,
	    out, found);
}

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

int mvcc_range(struct mvcc_reader *r, const struct mvcc_range *q, mvcc_kv_fn fn,
    void *arg, int64_t *count, bool *more)
{
	int64_t rev = q->rev, emitted = 0, n = 0;
	MDB_cursor *c;
	MDB_val k, v;
	struct mvcc_kv kv;
	int rc, op;

	*count = 0;
	*more = false;
	if ((rc = check_rev(r, &rev)))
		return rc;
	if (!rev)
		rev = INT64_MAX;
	if ((rc = mdb_cursor_open(r->txn, r->m->kv, &c)))
		return mvcc_lmdb_err(rc);
	k.mv_size = q->prefix_len;
	k.mv_data = (void *)q->prefix;
	op = q->prefix_len ? MDB_SET_RANGE : MDB_FIRST;
	for (;; op = MDB_NEXT) {
		bool found;
		rc = mdb_cursor_get(c, &k, &v, op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc) {
			rc = mvcc_lmdb_err(rc);
			break;
		}
		if (!has_prefix(k.mv_data, k.mv_size, q->prefix, q->prefix_len))
			break;
		if ((rc = kv_at(r->txn, r->m->rev, &k, &v, rev, q->keys_only,
			 &kv, &found)))
			break;
		if (!found)
			continue;
		n++;
		if (q->count_only)
			continue;
		if (q->after &&
		    key_cmp(kv.key, kv.key_len, q->after, q->after_len) <= 0)
			continue;
		if (q->limit > 0 && emitted >= q->limit) {
			*more = true;
			continue;
		}
		emitted++;
		if ((rc = fn(arg, &kv)))
			break;
	}
	mdb_cursor_close(c);
	*count = n;
	return rc;
}

int mvcc_history(struct mvcc_reader *r, const void *prefix, size_t plen,
    int64_t from, int64_t to, bool want_prev, mvcc_event_fn fn, void *arg)
{
	unsigned char rk[RKEY_LEN];
	MDB_val k = { RKEY_LEN, rk }, v;
	MDB_cursor *c;
	int rc, op = MDB_SET_RANGE;

	if (from <= r->compact)
		return KB_EEXPIRED;
	if (to > r->rev)
		to = r->rev;
	if (from > to)
		return 0;
	if ((rc = mdb_cursor_open(r->txn, r->m->rev, &c)))
		return mvcc_lmdb_err(rc);
	rkey_enc(rk, (uint64_t)from, 0);
	for (;; op = MDB_NEXT) {
		struct mvcc_event ev;
		struct rec rec;
		struct rpos p;

		rc = mdb_cursor_get(c, &k, &v, op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc) {
			rc = mvcc_lmdb_err(rc);
			break;
		}
		p = rkey_dec(k.mv_data);
		if ((int64_t)p.rev > to)
			break;
		if ((rc = rec_dec(&v, &rec)))
			break;
		if (!has_prefix(rec.key, rec.key_len, prefix, plen))
			continue;
		memset(&ev, 0, sizeof ev);
		ev.type = rec.type == REC_PUT ? MVCC_PUT : MVCC_DELETE;
		ev.kv.key = rec.key;
		ev.kv.key_len = rec.key_len;
		ev.kv.mod_rev = (int64_t)p.rev;
		if (rec.type == REC_PUT) {
			ev.kv.value = rec.value;
			ev.kv.value_len = rec.value_len;
			ev.kv.create_rev = rec.create;
			ev.kv.version = rec.version;
		}
		if (want_prev && rec.prev.rev) {
			unsigned char pk[RKEY_LEN];
			MDB_val k2 = { RKEY_LEN, pk }, v2;
			struct rec pr;
			rkey_enc(pk, rec.prev.rev, rec.prev.sub);
			rc = mdb_get(r->txn, r->m->rev, &k2, &v2);
			if (rc == 0 && rec_dec(&v2, &pr) == 0 &&
			    pr.type == REC_PUT) {
				ev.has_prev = true;
				ev.prev.key = pr.key;
				ev.prev.key_len = pr.key_len;
				ev.prev.value = pr.value;
				ev.prev.value_len = pr.value_len;
				ev.prev.create_rev = pr.create;
				ev.prev.mod_rev = (int64_t)rec.prev.rev;
				ev.prev.version = pr.version;
			}
			rc = 0;
		}
		if ((rc = fn(arg, &ev)))
			break;
	}
	mdb_cursor_close(c);
	return rc;
}

/* --- maintenance ---------------------------------------------------------- */

int mvcc_stats(struct mvcc *m, struct mvcc_stats *st)
{
	MDB_envinfo info;
	MDB_stat s;
	struct mvcc_reader *r;
	uint64_t wb = 0;
	int rc;

	memset(st, 0, sizeof *st);
	st->commits = m->st_commits;
	st->writes = m->st_writes;
	if ((rc = mvcc_read_begin(m, &r)))
		return rc;
	mdb_env_info(m->env, &info);
	mdb_env_stat(m->env, &s);
	st->map_size = (int64_t)info.me_mapsize;
	st->file_bytes = (int64_t)(info.me_last_pgno + 1) * s.ms_psize;
	st->rev = r->rev;
	st->compact_rev = r->compact;
	meta_get_u64(m, r->txn, "wbytes", &wb);
	st->window_bytes = (int64_t)wb;
	if (!mdb_stat(r->txn, m->rev, &s))
		st->history_records = (int64_t)s.ms_entries;
	if (!mdb_stat(r->txn, m->kv, &s))
		st->keys = (int64_t)s.ms_entries;
	mvcc_read_end(r);
	return 0;
}

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			snprintf(err, errlen, __VA_ARGS__);                    \
			rc = KB_EINTERNAL;                                     \
			goto out;                                              \
		}                                                              \
	} while (0)

int mvcc_check(struct mvcc *m, char *err, size_t errlen)
{
	struct mvcc_reader *r;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc, mrc;
	uint64_t wb = 0, sum = 0;
	struct rpos purged;
	int64_t rev, compact;

	if ((rc = mvcc_read_begin(m, &r)))
		return rc;
	mrc = meta_load(m, r->txn, &rev, &compact, &wb, &purged);
	CHECK(!mrc, "meta: %s", mdb_strerror(mrc));
	CHECK(compact <= rev, "compact %lld > rev %lld", (long long)compact,
	    (long long)rev);
	CHECK((int64_t)purged.rev <= compact, "purged %llu > compact %lld",
	    (unsigned long long)purged.rev, (long long)compact);

	/* every kv entry: its latest change is in rev and agrees */
	mdb_cursor_open(r->txn, m->kv, &c);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct kvhdr h;
		struct rec rec;
		unsigned char rk[RKEY_LEN];
		MDB_val k2 = { RKEY_LEN, rk }, v2;
		bool tomb;

		CHECK(v.mv_size >= KV_HDR, "kv %.*s: short value",
		    (int)k.mv_size, (char *)k.mv_data);
		kvhdr_dec(&v, &h);
		tomb = h.flags & KV_TOMB;
		CHECK(h.mod > 0 && h.mod <= rev &&
			(tomb ? v.mv_size == KV_HDR :
				h.create <= h.mod && h.version >= 1),
		    "kv %.*s: create %lld mod %lld version %lld rev %lld%s",
		    (int)k.mv_size, (char *)k.mv_data, (long long)h.create,
		    (long long)h.mod, (long long)h.version, (long long)rev,
		    tomb ? " (tombstone)" : "");
		rkey_enc(rk, (uint64_t)h.mod, h.sub);
		mrc = mdb_get(r->txn, m->rev, &k2, &v2);
		CHECK(!mrc, "kv %.*s: no history record at %lld.%u",
		    (int)k.mv_size, (char *)k.mv_data, (long long)h.mod, h.sub);
		CHECK(!rec_dec(&v2, &rec) &&
			rec.type == (tomb ? REC_DEL : REC_PUT) &&
			rec.key_len == k.mv_size &&
			!memcmp(rec.key, k.mv_data, k.mv_size) &&
			(tomb ||
			    (rec.create == h.create &&
				rec.version == h.version &&
				rec.value_len == v.mv_size - KV_HDR &&
				!memcmp(rec.value, (char *)v.mv_data + KV_HDR,
				    rec.value_len))),
		    "kv %.*s: history record at %lld differs", (int)k.mv_size,
		    (char *)k.mv_data, (long long)h.mod);
	}
	mdb_cursor_close(c);
	c = NULL;

	/* every history record: of a key kv knows, after its predecessor;
	 * the window bytes add up */
	mdb_cursor_open(r->txn, m->rev, &c);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct rec rec;
		struct rpos p = rkey_dec(k.mv_data);
		MDB_val k2, v2;
		struct kvhdr h;

		CHECK(!rec_dec(&v, &rec), "rev %llu: bad record",
		    (unsigned long long)p.rev);
		CHECK((int64_t)p.rev <= rev, "rev %llu beyond %lld",
		    (unsigned long long)p.rev, (long long)rev);
		CHECK(rpos_cmp(rec.prev, p) < 0, "rev %llu: prev not older",
		    (unsigned long long)p.rev);
		k2.mv_size = rec.key_len;
		k2.mv_data = (void *)rec.key;
		mrc = mdb_get(r->txn, m->kv, &k2, &v2);
		CHECK(!mrc, "rev %llu.%u: key %.*s unknown to kv",
		    (unsigned long long)p.rev, p.sub, (int)rec.key_len,
		    rec.key);
		kvhdr_dec(&v2, &h);
		CHECK(p.rev <= (uint64_t)h.mod,
		    "rev %llu.%u: newer than its "
		    "key's latest change",
		    (unsigned long long)p.rev, p.sub);
		if (rpos_cmp(p, purged) > 0)
			sum += rec_size(rec.key_len, rec.value_len);
	}
	mdb_cursor_close(c);
	c = NULL;
	CHECK(sum == wb,
	    "window bytes %llu, records above the purge point "
	    "add up to %llu",
	    (unsigned long long)wb, (unsigned long long)sum);
	rc = 0;
out:
	if (c)
		mdb_cursor_close(c);
	mvcc_read_end(r);
	return rc;
}
