/* plugin.c — store-lmdb: the descriptor, its config and its lifecycle.
 *
 * The embedded default store: one LMDB environment under the data dir,
 * served as the `store` bus service (kubus/store.h). Reads are answered on
 * the dispatch thread from LMDB snapshots; writes go to the engine's
 * committer thread, which answers them once they are durable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_lmdb.h"

static const struct kb_opt opts[] = {
	KB_OPT_STR("path", struct slmdb_cfg, path, "store-lmdb",
	    "LMDB directory, relative to the host's data dir"),
	KB_OPT_SIZE("map_size", struct slmdb_cfg, map_size, "256Mi",
	    "initial map size; it grows as needed"),
	KB_OPT_BOOL("sync", struct slmdb_cfg, sync, "true",
	    "fsync every commit (false: fast, not durable)"),
	KB_OPT_SIZE("value_max", struct slmdb_cfg, value_max, "1536Ki",
	    "largest value accepted"),
	KB_OPT_INT("history_revisions", struct slmdb_cfg, history_revisions,
	    "100000", 0, INT64_MAX,
	    "revisions of history kept for watches (0: no limit)"),
	KB_OPT_SIZE("history_bytes", struct slmdb_cfg, history_bytes, "256Mi",
	    "bytes of history kept for watches (0: no limit)"),
	KB_OPT_DURATION("compact_interval", struct slmdb_cfg, compact_interval,
	    "5s", "how often the history window is enforced (0: never)"),
	KB_OPT_INT("batch_max", struct slmdb_cfg, batch_max, "1024", 1, 65536,
	    "most writes sharing one commit"),
	KB_OPT_INT("committer_nice", struct slmdb_cfg, committer_nice, "-10",
	    -20, 19, "nice value of the committer thread, which every write "
	    "waits for (below the process's own needs CAP_SYS_NICE; "
	    "without it the thread keeps the process's)"),
	KB_OPT_END,
};

static int store_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct slmdb *s;
	char err[512], *path;
	int rc;

	if (!(s = calloc(1, sizeof *s)))
		return KB_ENOMEM;
	s->ctx = ctx;
	pthread_rwlock_init(&s->life, NULL);
	if ((rc = kb_conf_opts(conf, opts, &s->cfg, "store-lmdb", err,
		 sizeof err))) {
		free(s);
		return kb_fail(ctx, rc, "%s", err);
	}
	if (s->cfg.path[0] == '/') {
		path = strdup(s->cfg.path);
	} else if (asprintf(&path, "%s/%s", kb_data_dir(ctx), s->cfg.path) <
	    0) {
		path = NULL;
	}
	if (!path) {
		rc = KB_ENOMEM;
		goto out_cfg;
	}
	struct mvcc_config mc = {
		.path = path,
		.map_size = s->cfg.map_size,
		.sync = s->cfg.sync,
		.value_max = s->cfg.value_max,
		.history_revisions = s->cfg.history_revisions,
		.history_bytes = s->cfg.history_bytes,
		.compact_interval_ms = s->cfg.compact_interval,
		.batch_max = s->cfg.batch_max,
		.committer_nice = (int)s->cfg.committer_nice,
	};
	rc = mvcc_open(&mc, &s->m, err, sizeof err);
	free(path);
	if (rc) {
		kb_fail(ctx, rc, "cannot open the store: %s", err);
		goto out_cfg;
	}
	if (!(s->hub = watch_hub_new(s))) {
		rc = KB_ENOMEM;
		goto out_close;
	}
	/* Its reads read a snapshot and its writes queue for the committer:
	 * an in-process caller runs them on its own thread. */
	if ((rc = kb_serve_inline(ctx, KB_STORE_SERVICE, slmdb_serve, s))) {
		kb_fail(ctx, rc, "cannot serve `%s`: %s", KB_STORE_SERVICE,
		    kb_strerror(rc));
		goto out_hub;
	}
	{
		struct mvcc_stats st;
		mvcc_stats(s->m, &st);
		kb_info(ctx, "store open",
		    "path=%s/%s rev=%lld compact_rev=%lld "
		    "sync=%s",
		    s->cfg.path[0] == '/' ? "" : kb_data_dir(ctx), s->cfg.path,
		    (long long)st.rev, (long long)st.compact_rev,
		    s->cfg.sync ? "true" : "false");
	}
	*state = s;
	return 0;

out_hub:
	watch_hub_free(s->hub);
out_close:
	mvcc_close(s->m);
out_cfg:
	kb_conf_opts_free(opts, &s->cfg);
	pthread_rwlock_destroy(&s->life);
	free(s);
	return rc;
}

static int store_start(kb_ctx *ctx, void *state)
{
	return 0;
}

static void store_stop(kb_ctx *ctx, void *state)
{
	struct slmdb *s = state;

	/* the committer drains and answers what is queued while the bus is
	 * still up; handlers that come later answer Unavailable */
	pthread_rwlock_wrlock(&s->life);
	mvcc_close(s->m);
	s->m = NULL;
	pthread_rwlock_unlock(&s->life);
}

static void store_fini(void *state)
{
	struct slmdb *s = state;

	if (!s)
		return;
	mvcc_close(s->m); /* when start never ran */
	watch_hub_free(s->hub);
	kb_conf_opts_free(opts, &s->cfg);
	pthread_rwlock_destroy(&s->life);
	free(s);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "store-lmdb",
		.version = "0.1.0",
		.description = "embedded MVCC store on LMDB with group commit",
		.kind = KB_KIND_STORE,
		.init = store_init,
		.start = store_start,
		.stop = store_stop,
		.fini = store_fini,
	};
	return &p;
}
