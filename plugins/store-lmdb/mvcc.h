/* mvcc.h — an etcd-v3-style MVCC key-value engine on LMDB, without the bus.
 *
 * One global revision that grows by one per write transaction that changes
 * something; each key carries create_rev, mod_rev and version. Reads see a
 * consistent snapshot, at the current revision or any revision not yet
 * compacted. Writes go through one committer thread that applies every
 * queued write in one LMDB transaction (each write its own revision) and
 * commits once, so concurrent writers share an fsync (group commit); a
 * write is acknowledged (its done callback runs) only once it is durable.
 *
 * Layout (three LMDB databases in one environment):
 *   meta  "rev" current, "compact" compacted, "purged" (rev,sub) up to which
 *         history was physically dropped, "wbytes" bytes of history above it
 *   kv    key -> latest {create, mod, version, sub, flags, value}; a deleted
 *         key stays as a tombstone (no value) until compaction passes it
 *   rev   be64 rev | be32 sub -> {type, key, create, version, prev (rev,sub),
 *         value} : one record per change, each pointing at the key's
 *         previous change, for reads at a revision and watch replay
 * A read at revision R follows the key's chain from its kv entry back to
 * the newest change at or below R. There is no per-key index: every put
 * dirties one random page (kv) and appends to rev, which keeps durable
 * commits close to what raw LMDB costs.
 *
 * Compaction only moves "compact" forward; the committer then drops, a
 * bounded chunk per transaction, every record superseded at or below it (and
 * tombstones), so rewriting the same keys forever reuses the same pages.
 *
 * Error codes are kb_err values (kubus/err.h). Memory handed out by readers
 * is borrowed until mvcc_read_end(); results of writes are owned by the
 * write until mvcc_write_release().
 */
#ifndef STORE_LMDB_MVCC_H
#define STORE_LMDB_MVCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kubus/err.h>

/* LMDB's key limit (dupsort keys included). Kubernetes keys are far below. */
#define MVCC_KEY_MAX 511

struct mvcc;
struct mvcc_reader;

struct mvcc_config {
	const char *path;            /* directory; created when missing */
	int64_t map_size;            /* initial map size; grows on demand */
	bool sync;                   /* false: MDB_NOSYNC (not durable) */
	int64_t value_max;           /* largest value accepted */
	int64_t history_revisions;   /* keep at least this many; 0 = no limit */
	int64_t history_bytes;       /* keep history under this; 0 = no limit */
	int64_t compact_interval_ms; /* auto compaction period; 0 = off */
	int64_t batch_max;           /* most writes per commit; 0 = 1024 */
	int committer_nice;          /* the committer's nice value, best effort */
};

struct mvcc_kv {
	const char *key;
	size_t key_len;
	const void *value; /* NULL when not asked for (or a delete event) */
	size_t value_len;
	int64_t create_rev, mod_rev, version;
};

enum mvcc_op_type {
	MVCC_PUT = 1,
	MVCC_DELETE = 2,
	MVCC_GET = 3
};
enum mvcc_target {
	MVCC_MOD = 1,
	MVCC_CREATE,
	MVCC_VERSION,
	MVCC_EXISTS
};
enum mvcc_cmp_op {
	MVCC_EQ = 1,
	MVCC_NE,
	MVCC_LT,
	MVCC_GT
};

struct mvcc_op {
	int type; /* enum mvcc_op_type */
	const void *key;
	size_t key_len;
	const void *value; /* put only */
	size_t value_len;
};

/* Compare the key's target with `value` (EXISTS: value is 0 or 1). An
 * absent key has mod, create and version 0. */
struct mvcc_cmp {
	const void *key;
	size_t key_len;
	int target; /* enum mvcc_target */
	int op;     /* enum mvcc_cmp_op */
	int64_t value;
};

struct mvcc_op_res {
	int type;
	int64_t rev; /* put: the revision written */
	int deleted; /* delete: 0 or 1 */
	bool has_kv; /* put: header of the new kv (no value); get: kv */
	struct mvcc_kv kv;
	bool has_prev; /* put/delete: the kv before (when want_prev) */
	struct mvcc_kv prev;
};

enum mvcc_write_kind {
	MVCC_W_TXN = 1,
	MVCC_W_COMPACT = 2
};

struct mvcc_write;
typedef void (*mvcc_done_fn)(struct mvcc_write *w);

/* One write: a transaction (compares, then success or failure ops) or a
 * compaction. Inputs are borrowed until done() runs. */
struct mvcc_write {
	/* in */
	int kind; /* enum mvcc_write_kind */
	const struct mvcc_cmp *cmp;
	size_t ncmp;
	const struct mvcc_op *success;
	size_t nsuccess;
	const struct mvcc_op *failure;
	size_t nfailure;
	bool want_prev;      /* fill prev in put/delete results */
	int64_t compact_rev; /* MVCC_W_COMPACT */
	mvcc_done_fn done;   /* committer thread, after the commit; may free w
	                      * after mvcc_write_release() */
	void *arg;

	/* out, valid in done() */
	int rc;            /* 0 or a kb_err (nothing changed) */
	char err[160];     /* why, when rc != 0 */
	bool succeeded;    /* the compares held */
	int64_t rev;       /* revision after this write */
	int64_t compacted; /* compact revision after this write */
	struct mvcc_op_res *res;
	size_t nres;

	/* private */
	struct mvcc_write *next_;
	void *mem_;  /* allocations owned by the results */
	void *sync_; /* mvcc_write_sync's waiter */
};

/* A change, as watchers see it. Borrowed for the duration of the call. */
struct mvcc_event {
	int type;          /* MVCC_PUT or MVCC_DELETE */
	struct mvcc_kv kv; /* delete: key and mod_rev only */
	bool has_prev;
	struct mvcc_kv prev; /* the key before this change, when it existed */
};

/* Called on the committer thread after each commit that changed something,
 * with the events of the batch in revision order and the notify lock held
 * (see mvcc_locked). Must not block and must not call into the engine's
 * write path. */
typedef void (*mvcc_listen_fn)(void *arg, const struct mvcc_event *ev, size_t n,
    int64_t rev);

struct mvcc_stats {
	int64_t rev, compact_rev;
	int64_t commits;      /* durable write transactions */
	int64_t writes;       /* writes acknowledged */
	int64_t map_size;     /* current map size */
	int64_t file_bytes;   /* pages in use x page size */
	int64_t window_bytes; /* history bytes above the purge point */
	int64_t history_records;
	int64_t keys;
};

/* Open (creating if needed) the store at cfg->path and start its committer.
 * On error writes why to err. */
int mvcc_open(const struct mvcc_config *cfg, struct mvcc **out, char *err,
    size_t errlen);
/* Stop the committer (writes still queued fail with KB_ECLOSED) and close. */
void mvcc_close(struct mvcc *m);

/* Called after every commit (see mvcc_listen_fn). Set before writes start. */
void mvcc_set_listener(struct mvcc *m, mvcc_listen_fn fn, void *arg);
/* Run fn with the notify lock held; `rev` is the last revision listeners
 * have been told about. A watcher registered here sees every later event
 * through the listener and nothing before `rev`+1. */
void mvcc_locked(struct mvcc *m, void (*fn)(void *arg, int64_t rev), void *arg);

/* --- writes --------------------------------------------------------------- */

/* Check and queue a write. 0: done() will be called exactly once, on the
 * committer thread. Else a kb_err (w->err says why) and done() is not
 * called: an empty or over-long key, a value over value_max, a bad target or
 * op -> KB_EINVAL; 65,536 writes already queued -> KB_ETOOMANY; closed ->
 * KB_ECLOSED. */
int mvcc_submit(struct mvcc *m, struct mvcc_write *w);
/* Submit and wait; returns w->rc (or the submit error). Not from the
 * committer thread. */
int mvcc_write_sync(struct mvcc *m, struct mvcc_write *w);
/* Free the results of a finished write (the struct itself is the caller's). */
void mvcc_write_release(struct mvcc_write *w);

/* Convenience wrappers on mvcc_write_sync for tests and tools.
 * if_mod_rev < 0: unconditional. On a failed condition KB_ECONFLICT. */
int mvcc_put(struct mvcc *m, const void *key, size_t klen, const void *val,
    size_t vlen, int64_t if_mod_rev, int64_t *rev);
int mvcc_del(struct mvcc *m, const void *key, size_t klen, int64_t if_mod_rev,
    int64_t *rev, int *deleted);
int mvcc_compact(struct mvcc *m, int64_t rev, int64_t *compacted);

/* --- reads ---------------------------------------------------------------- */

/* A consistent snapshot. Any thread; one thread at a time per reader. */
int mvcc_read_begin(struct mvcc *m, struct mvcc_reader **out);
void mvcc_read_end(struct mvcc_reader *r);
int64_t mvcc_reader_rev(const struct mvcc_reader *r);
int64_t mvcc_reader_compact_rev(const struct mvcc_reader *r);

/* The key at `rev` (0 = the snapshot's). *found false when absent.
 * KB_EEXPIRED below the compact revision, KB_EINVAL past the snapshot's. */
int mvcc_get(struct mvcc_reader *r, const void *key, size_t klen, int64_t rev,
    struct mvcc_kv *out, bool *found);

struct mvcc_range {
	const void *prefix;
	size_t prefix_len;
	const void *after; /* resume strictly after this key (NULL: start) */
	size_t after_len;
	int64_t limit; /* 0 = no limit */
	bool count_only, keys_only;
	int64_t rev; /* 0 = the snapshot's */
};

/* Called for each kv in key order; return non-zero to stop (returned). */
typedef int (*mvcc_kv_fn)(void *arg, const struct mvcc_kv *kv);

/* Keys under prefix (after `after`), at most limit of them, to fn.
 * *count is the number of keys under the whole prefix, *more whether keys
 * remain after the last one given. Errors as mvcc_get. */
int mvcc_range(struct mvcc_reader *r, const struct mvcc_range *q, mvcc_kv_fn fn,
    void *arg, int64_t *count, bool *more);

/* Called for each event of a history replay; return non-zero to stop. */
typedef int (*mvcc_event_fn)(void *arg, const struct mvcc_event *ev);

/* Replay changes to keys under prefix with from <= revision <= to in
 * order, with prev values when want_prev. KB_EEXPIRED when from is at or
 * below the compact revision. */
int mvcc_history(struct mvcc_reader *r, const void *prefix, size_t plen,
    int64_t from, int64_t to, bool want_prev, mvcc_event_fn fn, void *arg);

/* --- maintenance ---------------------------------------------------------- */

int mvcc_stats(struct mvcc *m, struct mvcc_stats *st);
/* Check every invariant between the databases; 0 or KB_EINTERNAL with the
 * first violation in err. Reads a snapshot; for tests and tools. */
int mvcc_check(struct mvcc *m, char *err, size_t errlen);

#endif
