/* mvcc_int.h — what the engine's files share: the environment, the record
 * formats and the committer's state. Not for the plugin. */
#ifndef STORE_LMDB_MVCC_INT_H
#define STORE_LMDB_MVCC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <lmdb.h>

#include "mvcc.h"

/* kv value: create, mod, version (u64 each), sub (u32), flags (u32), then
 * the value; a tombstone has KV_TOMB and no value. */
#define KV_HDR 32
#define KV_TOMB 1u
/* rev record: type u8, pad[3], key_len u32, create, version, prev_rev (u64),
 * prev_sub u32, pad, then key, then value. */
#define REC_HDR 40
#define RKEY_LEN 12 /* be64 rev | be32 sub */

#define REC_PUT 1
#define REC_DEL 2

struct rpos {
	uint64_t rev;
	uint32_t sub;
};

struct kvhdr {
	int64_t create, mod, version;
	uint32_t sub, flags;
};

struct rec {
	int type;
	const char *key;
	size_t key_len;
	int64_t create, version;
	struct rpos prev; /* rev 0: none */
	const void *value;
	size_t value_len;
};

struct mvcc_reader {
	struct mvcc *m;
	MDB_txn *txn;
	int64_t rev, compact;
	struct mvcc_reader *next;
};

struct mvcc {
	MDB_env *env;
	MDB_dbi meta, kv, rev;
	struct mvcc_config cfg;
	char *path;
	int64_t map_size;
	/* Readers hold it shared for their whole transaction; the committer
	 * takes it exclusively to grow the map. */
	pthread_rwlock_t maplock;

	pthread_mutex_t rmu; /* reader cache */
	struct mvcc_reader *rfree;
	int nrfree;

	pthread_mutex_t mu; /* queue */
	pthread_cond_t cv;
	struct mvcc_write *qhead, *qtail;
	long qlen;
	/* A submit signals cv only when qlen reaches this: 0 or 1 while the
	 * committer waits for work, the batch it waits to fill while it gives
	 * writers time to join, LONG_MAX while it works (it looks at the
	 * queue before it waits again). Each signal to a waiting committer
	 * costs both threads a wake-up. */
	long wake_at;
	bool stopping;
	pthread_t thr;
	bool thr_started;

	pthread_mutex_t notify_mu;
	mvcc_listen_fn listen;
	void *listen_arg;
	int64_t notified_rev;

	/* committer-owned copies of meta */
	int64_t cur_rev, compact_rev;
	uint64_t wbytes;
	struct rpos purged;
	int64_t last_auto_ms;
	long last_batch;        /* writes in the last commit */
	int64_t last_commit_ns; /* how long it took */
	int fatal;              /* LMDB said MDB_PANIC: refuse writes */
	/* Writing the data file ahead of LMDB (commit.c, filler). The
	 * committer holds fill_mu across each batch's transaction, the
	 * filler across each write of zeros past the file's end. */
	pthread_mutex_t fill_mu;
	pthread_cond_t fill_cv;  /* with fill_mu: fill_want moved, or stop */
	pthread_t fill_thr;
	bool fill_started, fill_stop;
	int64_t fill_want;       /* fill up to here */
	int64_t ahead_end;       /* written up to here; -1: given up */

	/* The revisions of the last commit, by LMDB transaction id, so that a
	 * reader on that snapshot need not look them up in meta: a seqlock
	 * (odd while the committer writes it). */
	atomic_uint snap_seq;
	atomic_size_t snap_txnid;
	atomic_llong snap_rev, snap_compact;

	atomic_llong st_commits, st_writes;
	atomic_llong st_rev, st_compact;
};

static inline void put_u64(void *p, uint64_t v)
{
	memcpy(p, &v, 8);
}
static inline void put_u32(void *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static inline uint64_t get_u64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static inline uint32_t get_u32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline void rkey_enc(unsigned char *k, uint64_t rev, uint32_t sub)
{
	for (int i = 0; i < 8; i++)
		k[i] = (unsigned char)(rev >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		k[8 + i] = (unsigned char)(sub >> (24 - 8 * i));
}

static inline struct rpos rkey_dec(const void *p)
{
	const unsigned char *k = p;
	struct rpos r = { 0, 0 };
	for (int i = 0; i < 8; i++)
		r.rev = (r.rev << 8) | k[i];
	for (int i = 8; i < 12; i++)
		r.sub = (r.sub << 8) | k[i];
	return r;
}

static inline int rpos_cmp(struct rpos a, struct rpos b)
{
	if (a.rev != b.rev)
		return a.rev < b.rev ? -1 : 1;
	if (a.sub != b.sub)
		return a.sub < b.sub ? -1 : 1;
	return 0;
}

static inline bool has_prefix(const void *k, size_t klen, const void *p,
    size_t plen)
{
	return klen >= plen && (plen == 0 || memcmp(k, p, plen) == 0);
}

/* mvcc.c */
int mvcc_lmdb_err(int mrc);
void kvhdr_dec(const MDB_val *v, struct kvhdr *h);
int rec_dec(const MDB_val *v, struct rec *r);
size_t rec_size(size_t klen, size_t vlen);
void rec_enc(void *buf, const struct rec *r);
int meta_load(struct mvcc *m, MDB_txn *txn, int64_t *rev, int64_t *compact,
    uint64_t *wbytes, struct rpos *purged);
int meta_store(struct mvcc *m, MDB_txn *txn);
/* The key as of revision `rev` (> 0), starting from its kv entry `v`
 * (borrowed from the same transaction): follows the chain of changes back.
 * *found false when it did not exist then. */
int kv_at(MDB_txn *txn, MDB_dbi revdb, const MDB_val *k, const MDB_val *v,
    int64_t rev, bool keys_only, struct mvcc_kv *out, bool *found);
int64_t mvcc_now_ms(void);
/* Committer: the snapshot that transaction `txnid` committed has these
 * revisions (see snap_seq). */
void mvcc_snap_publish(struct mvcc *m, size_t txnid, int64_t rev,
    int64_t compact);

/* commit.c */
int mvcc_committer_start(struct mvcc *m);
void mvcc_committer_stop(struct mvcc *m);

/* compact.c: drop up to `budget` history records at or below compact_rev
 * that nothing at or above it can read; sets *left when more remain. */
int mvcc_purge(struct mvcc *m, MDB_txn *txn, int budget, bool *left);
/* The compact revision the history window asks for (0: none). */
int mvcc_auto_target(struct mvcc *m, MDB_txn *txn, int64_t *target);

#endif
