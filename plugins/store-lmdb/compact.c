/* compact.c — dropping history nothing can read any more.
 *
 * Compaction itself only moves the compact revision. Purging then walks
 * the history records at or below it, in order, from where it stopped last
 * time: each record's predecessor (the key's previous change) is superseded
 * at or below the compact revision, so it goes; a tombstone goes too, with
 * its kv entry when the key was not written again. What
 * stays is, per key, its newest change at or below the compact revision,
 * which reads at that revision need. The work is proportional to the
 * writes, not to the size of the store, and LMDB reuses the freed pages. */
#include <errno.h>
#include <stdlib.h>

#include "mvcc_int.h"

struct victim {
	struct rpos pos, prev;
	int type;
	size_t size;
	size_t key_off, key_len;
};

static int del_rec(struct mvcc *m, MDB_txn *txn, struct rpos p)
{
	unsigned char rk[RKEY_LEN];
	MDB_val k = { RKEY_LEN, rk };
	int rc;

	rkey_enc(rk, p.rev, p.sub);
	rc = mdb_del(txn, m->rev, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* A tombstone at or below the compact revision: the key goes from kv too,
 * unless it was written again since. */
static int drop_tomb(struct mvcc *m, MDB_txn *txn, const char *key, size_t klen,
    struct rpos p)
{
	MDB_val k = { klen, (void *)key }, v;
	struct kvhdr h;
	int rc = mdb_get(txn, m->kv, &k, &v);

	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	kvhdr_dec(&v, &h);
	if ((h.flags & KV_TOMB) && (uint64_t)h.mod == p.rev && h.sub == p.sub)
		rc = mdb_del(txn, m->kv, &k, NULL);
	return rc;
}

int mvcc_purge(struct mvcc *m, MDB_txn *txn, int budget, bool *left)
{
	struct victim *vs;
	char *keys = NULL;
	size_t nv = 0, kcap = 0, klen = 0;
	unsigned char rk[RKEY_LEN];
	MDB_val k = { RKEY_LEN, rk }, v;
	MDB_cursor *c;
	int rc, op = MDB_SET_RANGE;
	bool exhausted = false;

	*left = false;
	if (!(vs = malloc((size_t)budget * sizeof *vs)))
		return ENOMEM;
	if ((rc = mdb_cursor_open(txn, m->rev, &c))) {
		free(vs);
		return rc;
	}
	rkey_enc(rk, m->purged.rev, m->purged.sub);
	/* collect first: deleting under an open cursor is asking for trouble */
	while (nv < (size_t)budget) {
		struct rec rec;
		struct rpos p;

		rc = mdb_cursor_get(c, &k, &v, op);
		op = MDB_NEXT;
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			exhausted = true;
			break;
		}
		if (rc)
			break;
		p = rkey_dec(k.mv_data);
		if (rpos_cmp(p, m->purged) <= 0)
			continue;
		if ((int64_t)p.rev > m->compact_rev) {
			exhausted = true;
			break;
		}
		if (rec_dec(&v, &rec)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (klen + rec.key_len > kcap) {
			size_t ncap = (kcap + rec.key_len) * 2 + 4096;
			char *n = realloc(keys, ncap);
			if (!n) {
				rc = ENOMEM;
				break;
			}
			keys = n;
			kcap = ncap;
		}
		memcpy(keys + klen, rec.key, rec.key_len);
		vs[nv].pos = p;
		vs[nv].prev = rec.prev;
		vs[nv].type = rec.type;
		vs[nv].size = rec_size(rec.key_len, rec.value_len);
		vs[nv].key_off = klen;
		vs[nv].key_len = rec.key_len;
		klen += rec.key_len;
		nv++;
	}
	mdb_cursor_close(c);
	for (size_t i = 0; i < nv && !rc; i++) {
		struct victim *x = &vs[i];
		const char *key = keys + x->key_off;
		if (x->prev.rev && (rc = del_rec(m, txn, x->prev)))
			break;
		if (x->type == REC_DEL &&
		    ((rc = del_rec(m, txn, x->pos)) ||
			(rc = drop_tomb(m, txn, key, x->key_len, x->pos))))
			break;
		m->wbytes -= x->size;
		m->purged = x->pos;
	}
	if (!rc) {
		if (exhausted) {
			m->purged.rev = (uint64_t)m->compact_rev;
			m->purged.sub = UINT32_MAX;
		} else {
			*left = true;
		}
	}
	free(keys);
	free(vs);
	return rc;
}

int mvcc_auto_target(struct mvcc *m, MDB_txn *txn, int64_t *target)
{
	int64_t t = 0;
	int rc = 0;

	if (m->cfg.history_revisions > 0 &&
	    m->cur_rev - m->cfg.history_revisions > m->compact_rev)
		t = m->cur_rev - m->cfg.history_revisions;
	if (m->cfg.history_bytes > 0 &&
	    m->wbytes > (uint64_t)m->cfg.history_bytes) {
		/* drop the oldest records down to 3/4 of the window, so the
		 * next compaction is not due at once */
		uint64_t excess =
			     m->wbytes - (uint64_t)m->cfg.history_bytes / 4 * 3,
			 sum = 0;
		unsigned char rk[RKEY_LEN];
		MDB_val k = { RKEY_LEN, rk }, v;
		MDB_cursor *c;
		int op = MDB_SET_RANGE;

		if ((rc = mdb_cursor_open(txn, m->rev, &c)))
			return rc;
		rkey_enc(rk, m->purged.rev, m->purged.sub);
		while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
			struct rpos p = rkey_dec(k.mv_data);
			struct rec rec;
			op = MDB_NEXT;
			if (rpos_cmp(p, m->purged) <= 0)
				continue;
			if (rec_dec(&v, &rec))
				break;
			sum += rec_size(rec.key_len, rec.value_len);
			if ((int64_t)p.rev > t)
				t = (int64_t)p.rev;
			if (sum >= excess)
				break;
		}
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (t > m->cur_rev)
		t = m->cur_rev;
	*target = t;
	return rc;
}
