/* store_lmdb.h — what the plugin's files share. */
#ifndef STORE_LMDB_H
#define STORE_LMDB_H

#include <pthread.h>

#include <kubus/kubus.h>

#include "mvcc.h"

struct slmdb_cfg {
	char *path;
	int64_t map_size;
	bool sync;
	int64_t value_max;
	int64_t history_revisions;
	int64_t history_bytes;
	int64_t compact_interval;
	int64_t batch_max;
	int64_t committer_nice;
};

struct watch_hub;

struct slmdb {
	kb_ctx *ctx;
	struct slmdb_cfg cfg;
	/* Handlers hold `life` shared while they use `m`; stop takes it
	 * exclusively to close the engine (which answers every queued write
	 * while the bus is still up) and clears `m`. */
	pthread_rwlock_t life;
	struct mvcc *m;
	struct watch_hub *hub;
};

/* ops.c: the `store` service handler (any thread: kb_serve_inline). */
void slmdb_serve(void *arg, kb_msg *req);

/* codec helpers shared by ops.c and watch.c */
void slmdb_pack_str(msgpack_packer *pk, const char *s);
void slmdb_pack_kv(msgpack_packer *pk, const struct mvcc_kv *kv);
void slmdb_pack_kv_or_nil(msgpack_packer *pk, bool has,
    const struct mvcc_kv *kv);

/* watch.c */
struct watch_hub *watch_hub_new(struct slmdb *s);
void watch_hub_free(struct watch_hub *h);
/* op "watch" and "unwatch"; they answer req themselves. */
void watch_handle(struct watch_hub *h, kb_msg *req, const msgpack_object *b);
void unwatch_handle(struct watch_hub *h, kb_msg *req, const msgpack_object *b);

#endif
